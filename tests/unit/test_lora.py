"""Per-request LoRAs on the tiny random Wan2.1 folder: an adapter set at scale s gives the frames of the model
with it fused at s (the tolerance of the WanPipeline equality tests), the base model comes back when it is
switched off, a bounded number stay loaded, a LoRA of another model is refused at registration, and the
cache namespace keeps base and adapter (and scales) apart."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from chorus.engine.denoise import GenerationRequest
from chorus.engine.staged import generate_with_reuse
from chorus.models.catalog import ModelCard
from chorus.models.loader import adapter_for
from chorus.models.lora import LoraError, ResidentLoras, add_lora
from chorus.models.register import Options, add_model
from chorus.namespace import Namespace
from tests.fixtures.random_wan import write_random_wan
from tests.fixtures.wan_folder import write_random_lora, write_wan_folder

REQUEST = GenerationRequest(
    "a red square moving right", num_frames=5, height=32, width=32, num_inference_steps=3, seed=4
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora")
    folder = write_wan_folder(root / "wan")
    loras = {name: write_random_lora(folder, root / name, seed=seed) for name, seed in (("ink", 1), ("neon", 2))}
    models = root / "models"
    base = ModelCard.load(add_model(folder, models, Options(model_id="base")))
    for name, path in loras.items():
        add_lora(base, path, name)
    return folder, loras, models


def frames(model, request=REQUEST) -> np.ndarray:
    return generate_with_reuse(model, [request]).frames[0].numpy().astype(np.float64)


def test_an_adapter_at_a_scale_gives_the_fused_models_frames(setup) -> None:
    folder, loras, models = setup
    served = adapter_for(ModelCard.load(models / "base"))
    base = frames(served)
    resident = ResidentLoras(served, models, capacity=2)

    resident.use(("ink", 0.7))
    with_adapter = frames(served)
    fused = adapter_for(
        ModelCard.load(add_model(folder, models, Options(model_id="fused", lora=loras["ink"], lora_scale=0.7)))
    )
    diff = np.abs(with_adapter - frames(fused))
    print(f"adapter at 0.7 vs fused at 0.7: max {diff.max():.3f}/255")
    assert diff.max() <= 1.0
    assert np.abs(with_adapter - base).max() > 4  # the LoRA changes the video beyond the tolerance

    resident.use(None)
    assert np.abs(frames(served) - base).max() <= 1.0  # switched off: the base model again
    resident.use(("ink", 0.3))
    assert np.abs(frames(served) - with_adapter).max() > 1.0  # another scale, another video


def test_at_most_capacity_adapters_stay_loaded(setup) -> None:
    _, _, models = setup
    served = adapter_for(ModelCard.load(models / "base"))
    resident = ResidentLoras(served, models, capacity=1)
    resident.use(("ink", 1.0))
    resident.use(("neon", 1.0))
    assert list(resident.loaded) == ["neon"] and set(served.transformer.peft_config) == {"neon"}
    resident.use(("ink", 0.5))
    assert list(resident.loaded) == ["ink"] and set(served.transformer.peft_config) == {"ink"}


def test_a_lora_of_another_model_is_refused(setup, tmp_path) -> None:
    _, _, models = setup
    other = write_random_wan(tmp_path / "other", attention_head_dim=16)  # 32 wide, the folder's are 16
    with pytest.raises(LoraError, match="another model"):
        add_lora(ModelCard.load(models / "base"), write_random_lora(other, tmp_path / "other-lora"), "wrong")
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(Exception):  # noqa: B017 (safetensors' own error for a file that is none)
        add_lora(ModelCard.load(models / "base"), tmp_path / "empty.safetensors", "empty")
    assert set(ModelCard.load(models / "base").adapters) == {"ink", "neon"}


def test_the_namespace_keeps_base_adapters_and_scales_apart(setup) -> None:
    _, _, models = setup
    card = ModelCard.load(models / "base")
    keys = {
        lora: Namespace.for_request(card, replace(REQUEST, lora=lora), embedder="minilm").key
        for lora in (None, ("ink", 0.7), ("ink", 0.5), ("neon", 0.7))
    }
    assert len(set(keys.values())) == 4
    base = Namespace.for_request(card, REQUEST, embedder="minilm")
    assert "lora" not in base.info()  # base-model keys are the ones stored before adapters existed
