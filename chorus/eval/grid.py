"""A PNG contact sheet of clips (one row of frames per clip) to check the checker by eye."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from chorus.eval.checker import Reading

_LABEL_PX = 14


def save_grid(
    path: Path, clips: np.ndarray, prompts: Sequence[str], readings: Sequence[Reading], rows: int = 12, zoom: int = 3
) -> None:
    """Save the first ``rows`` clips, frames left to right, each under its prompt and reading."""
    clips = clips[:rows]
    num, frames, height, width, _ = clips.shape
    row_px = _LABEL_PX + height * zoom
    sheet = Image.new("RGB", (frames * width * zoom, num * row_px), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (clip, prompt, r) in enumerate(zip(clips, prompts, readings)):
        top = i * row_px
        seen = " ".join(str(v) for v in (r.color, r.shape, r.direction, r.background))
        draw.text((2, top + 1), f"{prompt}  |  read: {seen}", fill=(0, 0, 0))
        strip = np.concatenate(list(clip), axis=1)  # (H, F*W, 3)
        image = Image.fromarray(strip).resize((frames * width * zoom, height * zoom), Image.NEAREST)
        sheet.paste(image, (0, top + _LABEL_PX))
    sheet.save(path)
