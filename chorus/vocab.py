"""The project's shared words: one place for the names that cross module and process boundaries.

Torch-free (the API imports it). Values are the strings stored in Postgres, sent in webhooks and shown
in ``metrics.cache``; the enums are ``StrEnum`` so they compare and serialise as those strings.
"""

from __future__ import annotations

import enum


class Stage(enum.StrEnum):
    """Where one request's denoising step falls in a plan (see ``chorus.engine.plan``)."""

    full = "full"  # a miss: every step computed, no reuse
    stage1 = "stage1"  # not run: the request starts from the source's latent
    stage2 = "stage2"  # the region's tokens recomputed, the rest taken from the source
    stage3 = "stage3"  # a hit's repair steps, computed in full

    @property
    def computed_in_full(self) -> bool:
        return self in (Stage.full, Stage.stage3)
