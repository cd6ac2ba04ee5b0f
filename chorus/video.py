"""MP4 output: encode frames with imageio-ffmpeg and put them in the object store, with its previews.

Object keys are pure functions of tenant and job, so a retried upload
overwrites the same objects instead of leaving orphans. The previews (a
thumbnail of the middle frame, a spritesheet of frames in a grid) are made
once, here, at completion: ``/v1/videos/{id}/content?variant=`` serves them.
"""

from __future__ import annotations

import io
import math
import tempfile
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np
from PIL import Image

from chorus.storage import ObjectStore
from chorus.storage.links import PREVIEWS, VIDEOS_PREFIX, preview_key

MP4_CONTENT_TYPE = "video/mp4"
SPRITESHEET_FRAMES = 16  # at most; evenly spaced over the clip


def video_key(tenant_id: object, job_id: object) -> str:
    return f"{VIDEOS_PREFIX}{tenant_id}/{job_id}.mp4"


def spritesheet(frames: np.ndarray, max_frames: int = SPRITESHEET_FRAMES) -> np.ndarray:
    """Up to ``max_frames`` evenly spaced frames laid out in a near-square grid, row by row."""
    picks = frames[np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int)]
    columns = math.ceil(math.sqrt(len(picks)))
    rows = math.ceil(len(picks) / columns)
    _, height, width, channels = picks.shape
    sheet = np.zeros((rows * height, columns * width, channels), dtype=frames.dtype)
    for i, frame in enumerate(picks):
        row, column = divmod(i, columns)
        sheet[row * height : (row + 1) * height, column * width : (column + 1) * width] = frame
    return sheet


def _image_bytes(pixels: np.ndarray, image_format: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=image_format)
    return out.getvalue()


def previews(frames: np.ndarray) -> dict[str, bytes]:
    """variant -> encoded image: the middle frame as WebP, the spritesheet as JPEG."""
    return {
        "thumbnail": _image_bytes(frames[len(frames) // 2], "WEBP"),
        "spritesheet": _image_bytes(spritesheet(frames), "JPEG"),
    }


def encode_mp4(frames: np.ndarray, fps: int) -> bytes:
    """uint8 frames (F, H, W, 3) to H.264/yuv420p MP4 bytes that browsers play."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (F, H, W, 3), got {frames.dtype} {frames.shape}")
    _, height, width, _ = frames.shape
    if height % 2 or width % 2:
        raise ValueError("yuv420p needs even width and height")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "video.mp4"
        writer = imageio_ffmpeg.write_frames(
            str(path),
            (width, height),
            fps=fps,
            codec="libx264",
            pix_fmt_out="yuv420p",
            macro_block_size=2,  # sizes are already even; never let ffmpeg rescale
            output_params=["-movflags", "+faststart"],  # moov atom first: playable while downloading
        )
        writer.send(None)  # start the generator
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
        return path.read_bytes()


def video_output(key: str, num_frames: int, height: int, width: int, fps: int, nbytes: int) -> dict[str, Any]:
    """A job's ``output`` JSON (its video's previews are stored beside it: older jobs have none)."""
    return {
        "key": key,
        "width": width,
        "height": height,
        "num_frames": num_frames,
        "fps": fps,
        "bytes": nbytes,
        "previews": sorted(PREVIEWS),
    }


def upload_video(store: ObjectStore, key: str, frames: np.ndarray, fps: int) -> dict[str, Any]:
    """Encode and upload the video and its previews; returns the job's ``output`` JSON."""
    data = encode_mp4(frames, fps)
    for variant, image in previews(frames).items():
        store.put(preview_key(key, variant), image, content_type=PREVIEWS[variant][1])
    store.put(key, data, content_type=MP4_CONTENT_TYPE)
    num_frames, height, width, _ = frames.shape
    return video_output(key, num_frames, height, width, fps, len(data))
