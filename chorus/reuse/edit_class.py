"""What kind of edit a prompt diff is, read off its region: the class chooses the calibrated plan.

A local edit (a colour, a shape, an object's motion) concentrates the differing words' attention on a
part of the video, so Stage 2 can recompute that part and take the rest from the source. A global edit
(a background, a style) spreads over the frame, or covers more of it than ``max_local_fraction``: no
region is worth recomputing apart from the rest.
"""

from __future__ import annotations

from enum import StrEnum

from chorus.engine.stages import RegionMask


class EditClass(StrEnum):
    local = "local"  # concentrated: Stage 2 on the region
    global_ = "global"  # diffuse or large: the whole frame changes


def classify_edit(region: RegionMask | None, max_local_fraction: float = 0.5) -> EditClass:
    """The class of an edit whose region (from the source's and the target's maps) is ``region``; an
    edit with no maps to read is global (nothing says where it is)."""
    if region is None or region.fraction > max_local_fraction:
        return EditClass.global_
    return EditClass.local
