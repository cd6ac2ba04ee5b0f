"""``chorus generate``: one video in-process, no services (like ``cog predict``), through the worker's engine
path (``generate_with_reuse``) with the cache off. ``.mp4`` writes the video, ``.npy`` the uint8 frames
(F, H, W, 3). The seed means what it means everywhere in Chorus (see chorus.engine.sampling)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chorus.config import get_settings
from chorus.models.catalog import find_model


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def generate_command(
    model: Annotated[str, typer.Option(help="installed model id (chorus models list)")],
    prompt: Annotated[str, typer.Option(help="what the video shows")],
    out: Annotated[Path, typer.Option(help="output file: .mp4 or .npy")],
    seed: Annotated[int, typer.Option(help="seeds the initial noise")] = 0,
    negative_prompt: Annotated[str, typer.Option(help="what to steer away from (guidance > 1)")] = "",
    steps: Annotated[int | None, typer.Option(help="denoising steps (default: the model's)")] = None,
    guidance: Annotated[float | None, typer.Option(help="guidance scale (default: the model's)")] = None,
    frames: Annotated[int | None, typer.Option(help="frame count (default: the model's)")] = None,
    height: Annotated[int | None, typer.Option(help="height in pixels (default: the model's)")] = None,
    width: Annotated[int | None, typer.Option(help="width in pixels (default: the model's)")] = None,
) -> None:
    """Render one video in this process and write it to --out."""
    settings = get_settings()
    if out.suffix not in (".mp4", ".npy"):
        raise _fail("--out must end in .mp4 or .npy")
    card = find_model(model, settings.models_dir)
    if card is None:
        raise _fail(f"model {model!r} is not installed in {settings.models_dir}")
    limits = card.limits
    frames, height, width = (
        frames or limits.default_frames,
        height or limits.default_height,
        width or limits.default_width,
    )
    steps = steps or limits.default_steps
    if (problem := limits.check(frames, height, width, steps)) is not None:
        raise _fail(f"{problem[0]}: {problem[1]}")

    import numpy as np

    from chorus.engine.denoise import GenerationRequest
    from chorus.engine.staged import generate_with_reuse
    from chorus.models.loader import load_adapter
    from chorus.video import encode_mp4

    request = GenerationRequest(
        prompt=prompt,
        negative_prompt=negative_prompt,
        num_frames=frames,
        height=height,
        width=width,
        num_inference_steps=steps,
        guidance_scale=limits.default_guidance if guidance is None else guidance,
        seed=seed,
    )
    adapter = load_adapter(model, settings.models_dir, settings.device, settings.dtype)
    video = generate_with_reuse(adapter, [request]).frames[0].cpu().numpy()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(out, video)
    else:
        out.write_bytes(encode_mp4(video, limits.fps))
    typer.echo(f"wrote {out} ({frames} frames, {height}x{width}, {steps} steps, seed {seed})")
