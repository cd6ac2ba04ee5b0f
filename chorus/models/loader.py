"""Load an installed model by id, once per process."""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

import torch

from chorus.models.base import VideoModelAdapter
from chorus.models.catalog import ModelCard, find_model

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class UnknownModel(LookupError):
    pass


class ModelLoadTimeout(TimeoutError):
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
    from chorus.config import get_settings

    settings = get_settings()
    loaded: dict[str, object] = {}

    def load() -> None:
        try:
            loaded["adapter"] = adapter_for(card, device, dtype or settings.dtype)
        except BaseException as exc:  # handed to the caller's thread
            loaded["error"] = exc

    # A stuck read (a hung network disk) cannot be interrupted: the caller gets the timeout, the worker
    # fails its start instead of waiting forever, and the daemon thread never holds the process open.
    thread = threading.Thread(target=load, name=f"load-{model_id}", daemon=True)
    thread.start()
    thread.join(settings.model_load_timeout_s)
    if thread.is_alive():
        raise ModelLoadTimeout(f"{model_id} did not load within {settings.model_load_timeout_s} s")
    if "error" in loaded:
        raise loaded["error"]
    return loaded["adapter"]
