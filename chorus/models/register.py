"""Turn a diffusers Wan2.1 folder into an installed Chorus model: its card, written from the folder's configs.

The weights stay where they are (the card's ``weights`` points at the folder). Limits come from the
configs: frame counts 4k+1 (the VAE's temporal factor), sides divisible by the VAE's spatial factor times
the transformer's patch, Wan2.1's 480x832 default size. Torch-free: it reads JSON only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chorus.models.catalog import CARD_FILE

COMPONENTS = ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")
# The schedulers a card may name (Wan2.1 folders and their step distillations); chorus.engine.sampling builds them.
SCHEDULERS = ("UniPCMultistepScheduler", "FlowMatchEulerDiscreteScheduler")
SHIFT_KEY = {"UniPCMultistepScheduler": "flow_shift", "FlowMatchEulerDiscreteScheduler": "shift"}
MAX_FRAMES = 81  # Wan2.1's training length
MAX_SIDE = 1280


class FolderError(ValueError):
    """The folder is not a Wan2.1 diffusers folder, or the options do not fit it."""


@dataclass(frozen=True)
class Options:
    model_id: str | None = None  # default: the folder's name
    lora: Path | None = None
    lora_scale: float = 1.0
    sigmas: tuple[float, ...] | None = None  # pinned, shifted by flow_shift as diffusers' set_timesteps does
    flow_shift: float | None = None  # default: the folder scheduler's
    guidance: float | None = None  # default guidance; 5.0 (Wan2.1's) unless given
    renoise: bool = False  # the re-noising sampler of step distillations (FlowMatchEuler stochastic_sampling)


def _config(folder: Path, component: str, name: str = "config.json") -> dict[str, Any]:
    path = folder / component / name
    if not path.is_file():
        raise FolderError(f"{path} is missing: not a diffusers Wan2.1 folder")
    return json.loads(path.read_text())


def _revision(folder: Path, options: Options) -> str:
    """A digest of the configs and the weight files' names and sizes (weights are not read), and the LoRA."""
    digest = hashlib.sha256()
    for path in sorted(p for c in COMPONENTS for p in (folder / c).rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder)}:{path.stat().st_size}".encode())
        if path.suffix == ".json":
            digest.update(path.read_bytes())
    if options.lora is not None:
        digest.update(f"lora:{options.lora.stat().st_size}:{options.lora_scale}".encode())
    return digest.hexdigest()[:16]


def _scheduler(folder: Path, options: Options) -> dict[str, Any]:
    raw = _config(folder, "scheduler", "scheduler_config.json")
    name = raw["_class_name"]
    config = {k: v for k, v in raw.items() if not k.startswith("_")}
    if options.renoise:
        shift = options.flow_shift if options.flow_shift is not None else config.get(SHIFT_KEY.get(name, ""), 1.0)
        return {"class": "FlowMatchEulerDiscreteScheduler", "config": {"shift": shift, "stochastic_sampling": True}}
    if name not in SCHEDULERS:
        raise FolderError(f"scheduler {name!r} is not supported (one of {', '.join(SCHEDULERS)})")
    if options.flow_shift is not None:
        config[SHIFT_KEY[name]] = options.flow_shift
    return {"class": name, "config": config}


def card_for(folder: Path, options: Options) -> dict[str, Any]:
    """The card of ``folder`` (a diffusers Wan2.1 layout) under ``options``."""
    folder = folder.resolve()
    if _config(folder, ".", "model_index.json").get("_class_name") != "WanPipeline":
        raise FolderError(f"{folder} is not a WanPipeline folder (model_index.json)")
    transformer, vae = _config(folder, "transformer"), _config(folder, "vae")
    temporal, spatial = vae.get("scale_factor_temporal", 4), vae.get("scale_factor_spatial", 8)
    side_multiple = spatial * transformer["patch_size"][1]
    steps = len(options.sigmas) if options.sigmas else None
    if options.lora is not None and not options.lora.is_file():
        raise FolderError(f"LoRA file {options.lora} not found")
    return {
        "model_id": options.model_id or folder.name,
        "revision": _revision(folder, options),
        "weights": str(folder),
        "latent_space": "wan_vae",
        "text_encoder": "umt5",
        "text_max_tokens": 512,
        "scheduler": _scheduler(folder, options),
        "sigmas": list(options.sigmas) if options.sigmas else None,
        "lora": {"path": str(options.lora.resolve()), "scale": options.lora_scale} if options.lora else None,
        "limits": {
            "frames": list(range(1, MAX_FRAMES + 1, temporal)),
            "min_side": side_multiple,
            "max_side": MAX_SIDE,
            "side_multiple": side_multiple,
            "min_steps": steps or 1,
            "max_steps": steps or 100,
            "default_frames": MAX_FRAMES,
            "default_height": 480,
            "default_width": 832,
            "default_steps": steps or 50,
            "default_guidance": options.guidance if options.guidance is not None else (1.0 if steps else 5.0),
            "fps": 16,
        },
    }


def add_model(folder: Path, models_dir: Path, options: Options) -> Path:
    """Write the card under ``models_dir/<id>/``; returns that folder."""
    card = card_for(folder, options)
    model_id = card["model_id"]
    if "/" in model_id or model_id.startswith("."):
        raise FolderError(f"model id {model_id!r} must be a plain name")
    target = models_dir / model_id
    target.mkdir(parents=True, exist_ok=True)
    (target / CARD_FILE).write_text(json.dumps(card, indent=2))
    return target
