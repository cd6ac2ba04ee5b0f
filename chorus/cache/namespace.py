"""What must match for a cache entry to be reusable, and whose entries a request may see.

Torch-free: the API can compute a request's namespace and domain too.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from chorus.models.catalog import ModelCard

SHARED_DOMAIN = "shared"


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

    def __post_init__(self) -> None:
        # Normalise numeric types so that 3 and 3.0, or "4" from a form, hash alike.
        for name in ("steps", "height", "width", "frames"):
            object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "guidance_scale", float(self.guidance_scale))

    @classmethod
    def for_request(
        cls,
        card: ModelCard,
        *,
        steps: int,
        height: int,
        width: int,
        frames: int,
        guidance_scale: float,
        embedder: str,
    ) -> Namespace:
        return cls(
            model_id=card.model_id,
            revision=card.revision,
            scheduler=card.sampling_id,
            steps=steps,
            height=height,
            width=width,
            frames=frames,
            guidance_scale=guidance_scale,
            embedder=embedder,
        )

    def info(self) -> dict[str, Any]:
        """The hashed fields, stored beside the hash so that humans can read it."""
        return asdict(self)

    @property
    def key(self) -> str:
        canonical = json.dumps(self.info(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def cache_domain(tenant_id: uuid.UUID | str, cache_shared: bool) -> str:
    """The pool a tenant reads from and writes to: its own, or the shared one if it opted in.

    Approximate caches leak prompts across users, so private is the default.
    """
    return SHARED_DOMAIN if cache_shared else str(tenant_id)
