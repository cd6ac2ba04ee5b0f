"""The /v1/videos mapping without services: seconds to frames by the model's rule, the SDK's flattened form
fields, the spritesheet's grid."""

from __future__ import annotations

import numpy as np
import pytest

from chorus.errors import InvalidInput
from chorus.jobs.videos import VideoCreate, form_fields, frames_for_seconds
from chorus.models.catalog import ModelLimits
from chorus.video import spritesheet

WAN_LIKE = ModelLimits(frames=tuple(range(1, 82, 4)), min_side=16, max_side=832, side_multiple=16, fps=16)


@pytest.mark.parametrize(("seconds", "frames"), [("5", 81), ("1", 17), ("2.5", 41), ("0.25", 5)])
def test_seconds_take_the_nearest_frame_count_the_model_makes(seconds: str, frames: int) -> None:
    assert frames_for_seconds(seconds, WAN_LIKE) == frames


def test_a_length_more_than_half_a_second_from_any_frame_count_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        frames_for_seconds("6", WAN_LIKE)  # 96 frames wanted, 81 the most
    assert refused.value.code == "invalid_seconds" and '"5.0625"' in refused.value.message


def test_form_fields_nest_brackets_and_read_numbers_only_where_the_field_is_a_number() -> None:
    form = {"prompt": "42", "seconds": "4", "seed": "7", "guidance_scale": "2.5", "cache[mode]": "off", "size": "x"}
    assert form_fields(VideoCreate, form) == {
        "prompt": "42",
        "seconds": "4",
        "seed": 7,
        "guidance_scale": 2.5,
        "cache": {"mode": "off"},
        "size": "x",
    }
    assert form_fields(VideoCreate, {"seed": "seven"}) == {"seed": "seven"}  # left for validation to refuse


def test_spritesheet_lays_frames_out_row_by_row() -> None:
    frames = np.stack([np.full((2, 3, 3), 10 * (i + 1), dtype=np.uint8) for i in range(5)])
    sheet = spritesheet(frames)
    assert sheet.shape == (2 * 2, 3 * 3, 3)  # 5 frames: 3 columns, 2 rows
    assert [sheet[0, 0, 0], sheet[0, 3, 0], sheet[0, 6, 0], sheet[2, 0, 0], sheet[2, 3, 0]] == [10, 20, 30, 40, 50]
    assert sheet[2:, 6:].max() == 0  # the grid's last cell stays empty
