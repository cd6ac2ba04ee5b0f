"""Which models are installed and what each accepts. Torch-free: the API uses it.

A model is a folder under ``CHORUS_MODELS_DIR`` (or the repo's ``models/``)
holding a diffusers layout (``transformer/`` …) and a ``chorus_model.json``
card with its limits and how to load it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CARD_FILE = "chorus_model.json"  # what makes a folder a model: its card


@dataclass(frozen=True)
class ModelLimits:
    """What a model accepts; the API validates requests against these."""

    frames: tuple[int, ...]  # allowed frame counts
    min_side: int
    max_side: int
    side_multiple: int
    max_steps: int = 100
    min_steps: int = 1  # a card pinned to a sigma list runs exactly that many steps
    default_frames: int = 8
    default_height: int = 32
    default_width: int = 32
    default_steps: int = 4
    default_guidance: float = 3.0
    fps: int = 8

    def check(self, num_frames: int, height: int, width: int, steps: int) -> tuple[str, str] | None:
        """Return (code, message) for the first violated limit, or None."""
        if num_frames not in self.frames:
            return "invalid_num_frames", f"num_frames must be one of {list(self.frames)}"
        for name, side in (("height", height), ("width", width)):
            if not self.min_side <= side <= self.max_side:
                return f"invalid_{name}", f"{name} must be in [{self.min_side}, {self.max_side}]"
            if side % self.side_multiple:
                return f"invalid_{name}", f"{name} must be divisible by {self.side_multiple}"
        if not self.min_steps <= steps <= self.max_steps:
            return "invalid_num_inference_steps", f"num_inference_steps must be in [{self.min_steps}, {self.max_steps}]"
        return None


@dataclass(frozen=True)
class ModelCard:
    """The contents of ``chorus_model.json``."""

    model_id: str
    path: Path
    revision: str
    limits: ModelLimits
    latent_space: str = "pixel"  # "pixel" or "wan_vae"
    text_encoder: str = "minilm"
    text_max_tokens: int = 32
    flow_shift: float = 1.0
    # "default": the scheduler's own spacing (diffusers' FlowMatchEuler ends at sigma ~0.004, a step that
    # changes nothing); "linear": s evenly on [1, 0) before the shift, Wan2.1's own grid, every step moves.
    sigma_grid: str = "default"
    # A diffusers folder's sampler: {"class": "UniPCMultistepScheduler", "config": {...}} as its scheduler/
    # config (with the card's overrides); None: our own model's FlowMatchEuler on flow_shift and sigma_grid.
    scheduler: dict[str, Any] | None = None
    # Pinned noise levels, passed to the scheduler's set_timesteps(sigmas=...), which shifts them by its
    # shift as diffusers does (LightX2V's 4-step Wan2.1: 1, 0.75, 0.5, 0.25 at shift 5 -> 1, 0.9375, 0.8333, 0.625).
    sigmas: tuple[float, ...] | None = None
    weights: str | None = None  # the diffusers folder, when it is not the card's own folder
    lora: dict[str, Any] | None = None  # {"path": file, "scale": s}: loaded and fused at load
    # Per-request LoRAs (``chorus models add-lora``): name -> {"path": file, "revision": digest of the file}.
    adapters: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ModelCard:
        raw = json.loads((path / CARD_FILE).read_text())
        limits = raw.pop("limits")
        limits["frames"] = tuple(limits["frames"])
        if "default_side" in limits:  # cards written before height and width defaults were separate
            side = limits.pop("default_side")
            limits.setdefault("default_height", side)
            limits.setdefault("default_width", side)
        known = {k: raw.pop(k) for k in list(raw) if k in cls.__dataclass_fields__}
        if known.get("sigmas") is not None:
            known["sigmas"] = tuple(known["sigmas"])
        return cls(path=path, limits=ModelLimits(**limits), extra=raw, **known)

    @property
    def draws_shapes(self) -> bool:
        """The project's own models draw the shapes world, so the attribute checker (``chorus.eval.checker``)
        can judge them. They are the ones conditioned on MiniLM states (``chorus train`` on
        ``chorus.data.shapes``, in pixel or Wan-VAE latents); a registered Wan folder brings its own encoder."""
        return self.text_encoder == "minilm"

    @property
    def weights_path(self) -> Path:
        """Where the diffusers components (transformer/, vae/ ...) are."""
        return Path(self.weights) if self.weights else self.path

    @property
    def sampling_id(self) -> str:
        """The sampler's identity for cache namespaces: class, config and grid. Our own model keeps the
        id its existing entries were stored under."""
        if self.scheduler is None:
            return f"flow_match_euler(shift={float(self.flow_shift)},grid={self.sigma_grid})"
        config = json.dumps(self.scheduler["config"], sort_keys=True, separators=(",", ":"))
        grid = "default" if self.sigmas is None else ",".join(f"{s:g}" for s in self.sigmas)
        return f"{self.scheduler['class']}({config},sigmas={grid})"


def find_model(model_id: str, models_dir: Path) -> ModelCard | None:
    """The card of ``model_id`` if it is installed (a folder name, never a path)."""
    if "/" in model_id or "\\" in model_id or model_id.startswith("."):
        return None
    path = models_dir / model_id
    if not (path / CARD_FILE).is_file():
        return None
    return ModelCard.load(path)


def list_models(models_dir: Path) -> list[str]:
    return sorted(p.parent.name for p in models_dir.glob(f"*/{CARD_FILE}"))
