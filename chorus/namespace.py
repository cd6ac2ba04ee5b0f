"""What must match for requests to share work, and whose cache entries a request may see.

One source of truth, from the widest sharing to the narrowest: ``RunShape`` (frames, size, steps) is what
requests must share to be denoised in one batched forward; ``batch_key`` adds the model (the jobs
table's column that claims batch mates); ``Namespace`` adds everything else that makes a stored
trajectory meaningless to another request (revision, scheduler, guidance, embedder).

The ground floor: imports nothing of the project, so the engine, the cache, the reuse coordinator and
the job machinery all name these nouns from here. Torch-free: the API computes batch keys.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from chorus.models.catalog import ModelCard

SHARED_DOMAIN = "shared"


class SizedRequest(Protocol):
    """The fields of a request (``GenerationRequest``, the API's resolved input) that fix its run's shape."""

    num_frames: int
    height: int
    width: int
    num_inference_steps: int


class GuidedRequest(SizedRequest, Protocol):
    guidance_scale: float


@dataclass(frozen=True)
class RunShape:
    """What requests must share to be denoised in one batched forward (guidance and seed are per row)."""

    frames: int
    height: int
    width: int
    steps: int

    @classmethod
    def of(cls, request: SizedRequest) -> RunShape:
        return cls(int(request.num_frames), int(request.height), int(request.width), int(request.num_inference_steps))

    def __str__(self) -> str:
        return f"{self.frames}x{self.height}x{self.width}/{self.steps}"


def lora_tag(name: str, scale: float) -> str:
    return f"{name}@{float(scale):g}"


def batch_key(model_id: str, shape: RunShape, lora: str = "") -> str:
    """Jobs with equal keys can share one batched forward: same model, same run shape, same LoRA and scale."""
    return f"{model_id}/{shape}" + (f"/lora={lora}" if lora else "")


@dataclass(frozen=True)
class Namespace:
    """Everything that makes a stored latent trajectory meaningless to another request if it differs.

    Two requests can only share an entry when every field is equal; ``key`` is the stable
    hash stored in the ``namespace`` column. The embedder is part of it because
    embeddings from different encoders are not comparable.
    """

    model_id: str
    revision: str
    scheduler: str
    steps: int
    height: int
    width: int
    frames: int
    guidance_scale: float
    embedder: str
    lora: str = ""  # a per-request adapter: name, file revision and scale; "" (the base model) hashes as before

    def __post_init__(self) -> None:
        # Normalise numeric types so that 3 and 3.0, or "4" from a form, hash alike.
        for name in ("steps", "height", "width", "frames"):
            object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "guidance_scale", float(self.guidance_scale))

    @classmethod
    def for_request(cls, card: ModelCard, request: GuidedRequest, *, embedder: str) -> Namespace:
        shape = RunShape.of(request)
        return cls(
            model_id=card.model_id,
            revision=card.revision,
            scheduler=card.sampling_id,
            steps=shape.steps,
            height=shape.height,
            width=shape.width,
            frames=shape.frames,
            guidance_scale=request.guidance_scale,
            embedder=embedder,
            lora=adapter_tag(card, getattr(request, "lora", None)),
        )

    @property
    def shape(self) -> RunShape:
        return RunShape(self.frames, self.height, self.width, self.steps)

    def info(self) -> dict[str, Any]:
        """The hashed fields, stored beside the hash so that humans can read it."""
        info = asdict(self)
        if not self.lora:  # base-model keys stay what they were before adapters existed
            del info["lora"]
        return info

    @property
    def key(self) -> str:
        canonical = json.dumps(self.info(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def adapter_tag(card: ModelCard, lora: tuple[str, float] | None) -> str:
    """A per-request LoRA's identity in keys: name, its file's revision and scale; "" for the base model."""
    if lora is None:
        return ""
    name, scale = lora
    return f"{name}:{card.adapters[name]['revision']}@{float(scale):g}"


def cache_domain(tenant_id: uuid.UUID | str, cache_shared: bool) -> str:
    """The pool a tenant reads from and writes to: its own, or the shared one if it opted in.

    Approximate caches leak prompts across users, so private is the default.
    """
    return SHARED_DOMAIN if cache_shared else str(tenant_id)
