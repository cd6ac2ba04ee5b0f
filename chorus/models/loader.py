"""Load an installed model by id, once per process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from chorus.models.base import VideoModelAdapter
from chorus.models.catalog import ModelCard, find_model

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class UnknownModel(LookupError):
    pass


def adapter_for(card: ModelCard, device: str = "cpu", dtype: str = "fp32") -> VideoModelAdapter:
    """A diffusers Wan2.1 folder (UMT5 text) or our own model (MiniLM text), in ``dtype`` (see DTYPES)."""
    if card.text_encoder == "umt5":
        from chorus.models.wan_folder import WanFolderAdapter

        return WanFolderAdapter(card, device=device, dtype=DTYPES[dtype])
    from chorus.models.wan import WanAdapter

    return WanAdapter(card, device=device, dtype=DTYPES[dtype])


@lru_cache(maxsize=4)
def load_adapter(model_id: str, models_dir: Path, device: str = "cpu", dtype: str | None = None) -> VideoModelAdapter:
    """``dtype`` None: the settings' (CHORUS_DTYPE)."""
    card = find_model(model_id, models_dir)
    if card is None:
        raise UnknownModel(model_id)
    if dtype is None:
        from chorus.config import get_settings

        dtype = get_settings().dtype
    return adapter_for(card, device, dtype)
