"""Load an installed model by id, once per process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from chorus.models.base import VideoModelAdapter
from chorus.models.catalog import find_model


class UnknownModel(LookupError):
    pass


@lru_cache(maxsize=4)
def load_adapter(model_id: str, models_dir: Path, device: str = "cpu") -> VideoModelAdapter:
    card = find_model(model_id, models_dir)
    if card is None:
        raise UnknownModel(model_id)
    from chorus.models.wan import WanAdapter

    return WanAdapter(card, device=device)
