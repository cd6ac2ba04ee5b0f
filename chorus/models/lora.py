"""Per-request LoRAs: registering one for a model, and keeping a bounded set loaded on a worker's transformer.

A LoRA is registered in the model's card (``chorus models add-lora``) after its weights were checked
against the transformer: every layer it adapts must exist, with matching input and output sizes. Workers
load adapters with diffusers' peft integration (``load_lora_adapter``), unfused: a batch switches to its
adapter and scale with ``set_adapters`` (or runs the base model with the LoRA layers disabled), so one
worker serves many adapters without reloading the model. At most ``capacity`` stay loaded, least recently
used out first.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import torch
from accelerate import init_empty_weights
from diffusers import WanPipeline, WanTransformer3DModel

from chorus.models.base import VideoModelAdapter
from chorus.models.catalog import CARD_FILE, ModelCard, find_model

PREFIX = "transformer."


class LoraError(ValueError):
    """The file is not a LoRA of this model's transformer."""


def file_revision(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def lora_weights(path: Path) -> dict[str, torch.Tensor]:
    """The file's weights in diffusers' naming (original Wan and musubi LoRAs are converted as diffusers does)."""
    return WanPipeline.lora_state_dict(str(path))


def check_lora(card: ModelCard, path: Path) -> int:
    """Raise LoraError unless every layer the LoRA adapts is a linear layer of the model's transformer with
    the LoRA's sizes; returns the number of layers it adapts. The transformer is built without weights."""
    config = WanTransformer3DModel.load_config(card.weights_path / "transformer")
    with init_empty_weights():
        modules = dict(WanTransformer3DModel.from_config(config).named_modules())
    layers: dict[str, dict[str, torch.Size]] = {}
    for key, tensor in lora_weights(path).items():
        if ".lora_A." not in key and ".lora_B." not in key:
            continue  # alphas, biases of the adapted layers
        module, part = key.removeprefix(PREFIX).split(".lora_")
        layers.setdefault(module, {})[part[0]] = tensor.shape
    if not layers:
        raise LoraError(f"{path} holds no LoRA layers (lora_A / lora_B weights)")
    for module, shapes in layers.items():
        target = modules.get(module)
        if not isinstance(target, torch.nn.Linear):
            raise LoraError(f"the LoRA adapts {module!r}, which is not a linear layer of {card.model_id}'s transformer")
        if set(shapes) != {"A", "B"}:
            raise LoraError(f"the LoRA's {module!r} lacks its lora_A or lora_B weight")
        if shapes["A"][1] != target.in_features or shapes["B"][0] != target.out_features:
            raise LoraError(
                f"the LoRA's {module!r} is {shapes['A'][1]} -> {shapes['B'][0]}, the transformer's is "
                f"{target.in_features} -> {target.out_features}: a LoRA of another model"
            )
    return len(layers)


def add_lora(card: ModelCard, path: Path, name: str) -> int:
    """Check ``path`` against the model and register it in the card as ``name`` (replacing one of that name);
    returns the number of layers it adapts."""
    if not path.is_file():
        raise LoraError(f"{path} not found")
    layers = check_lora(card, path)
    raw = json.loads((card.path / CARD_FILE).read_text())
    adapters = raw.get("adapters", {})
    adapters[name] = {"path": str(path.resolve()), "revision": file_revision(path)}
    raw["adapters"] = dict(sorted(adapters.items()))
    (card.path / CARD_FILE).write_text(json.dumps(raw, indent=2))
    return layers


class ResidentLoras:
    """The adapters loaded on one served model's transformer; ``use`` readies it for a batch."""

    def __init__(self, model: VideoModelAdapter, models_dir: Path, capacity: int) -> None:
        self.model, self.models_dir, self.capacity = model, models_dir, max(1, capacity)
        self.loaded: OrderedDict[str, str] = OrderedDict()  # name -> revision loaded, least recently used first

    def use(self, lora: tuple[str, float] | None) -> None:
        """Set ``(name, scale)`` active, loading it if needed; None: the base model (LoRA layers disabled)."""
        transformer = self.model.transformer
        if lora is None:
            if self.loaded:
                transformer.disable_lora()
            return
        name, scale = lora
        entry = self._entry(name)
        if self.loaded.get(name) != entry["revision"]:
            self._load(name, entry)
        self.loaded.move_to_end(name)
        transformer.enable_lora()
        transformer.set_adapters([name], weights=[float(scale)])

    def _entry(self, name: str) -> dict:
        """The adapter's card entry. The model was loaded with the card of its start; adapters registered
        since then are read from the card now (the cache namespace reads the same card)."""
        if name not in self.model.card.adapters:
            fresh = find_model(self.model.card.path.name, self.models_dir)
            if fresh is None or fresh.revision != self.model.card.revision:
                raise LookupError(f"model {self.model.model_id} changed since it was loaded")
            self.model.card = replace(self.model.card, adapters=fresh.adapters)
        return self.model.card.adapters[name]

    def _load(self, name: str, entry: dict) -> None:
        if name in self.loaded:  # re-registered with another file
            self._drop(name)
        while len(self.loaded) >= self.capacity:
            self._drop(next(iter(self.loaded)))
        weights = lora_weights(Path(entry["path"]))
        self.model.transformer.load_lora_adapter(weights, prefix="transformer", adapter_name=name)
        self.loaded[name] = entry["revision"]

    def _drop(self, name: str) -> None:
        self.model.transformer.delete_adapters(name)
        del self.loaded[name]
