"""MP4 output: encode frames with imageio-ffmpeg and put them in the object store.

The object key is a pure function of tenant and job, so a retried upload
overwrites the same object instead of leaving orphans.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np

from chorus.storage import ObjectStore
from chorus.storage.links import VIDEOS_PREFIX

MP4_CONTENT_TYPE = "video/mp4"


def video_key(tenant_id: object, job_id: object) -> str:
    return f"{VIDEOS_PREFIX}{tenant_id}/{job_id}.mp4"


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
    """A job's ``output`` JSON."""
    return {"key": key, "width": width, "height": height, "num_frames": num_frames, "fps": fps, "bytes": nbytes}


def upload_video(store: ObjectStore, key: str, frames: np.ndarray, fps: int) -> dict[str, Any]:
    """Encode and upload; returns the job's ``output`` JSON."""
    data = encode_mp4(frames, fps)
    store.put(key, data, content_type=MP4_CONTENT_TYPE)
    num_frames, height, width, _ = frames.shape
    return video_output(key, num_frames, height, width, fps, len(data))
