import dataclasses
from types import SimpleNamespace

import pytest

from chorus.config import REPO_MODELS_DIR
from chorus.models.catalog import find_model
from chorus.namespace import SHARED_DOMAIN, Namespace, RunShape, batch_key, cache_domain

BASE = Namespace(
    model_id="chorus-shapes",
    revision="step-250",
    scheduler="flow_match_euler(shift=2.0)",
    steps=4,
    height=32,
    width=32,
    frames=8,
    guidance_scale=3.0,
    embedder="all-minilm-l6-v2/32",
)


def test_key_is_a_stable_sha256_of_the_fields():
    # A golden value: the hash is stored in rows, so it must not change between releases.
    assert BASE.key == "48d6c3339ce122199450e2ecd3faf99d018d12e617cd05cb4ac53845dffd1f26"
    assert BASE.key == Namespace(**BASE.info()).key


@pytest.mark.parametrize(
    "change",
    [
        {"model_id": "wan2.1-1.3b"},
        {"revision": "step-500"},
        {"scheduler": "flow_match_euler(shift=3.0)"},
        {"steps": 8},
        {"height": 48},
        {"width": 48},
        {"frames": 16},
        {"guidance_scale": 5.0},
        {"embedder": "clip-vit-l/77"},
    ],
)
def test_every_field_changes_the_key(change):
    assert dataclasses.replace(BASE, **change).key != BASE.key


def test_numeric_types_are_normalised():
    same = dataclasses.replace(BASE, steps="4", guidance_scale=3, height=32.0)
    assert same.key == BASE.key
    assert isinstance(same.guidance_scale, float) and isinstance(same.steps, int)


def test_for_request_takes_model_identity_and_scheduler_from_the_card():
    card = find_model("chorus-shapes", REPO_MODELS_DIR)
    assert card is not None
    request = SimpleNamespace(num_frames=8, height=32, width=48, num_inference_steps=4, guidance_scale=3.0)
    ns = Namespace.for_request(card, request, embedder="all-minilm-l6-v2/32")
    assert (ns.model_id, ns.revision) == (card.model_id, card.revision)
    assert str(float(card.flow_shift)) in ns.scheduler and card.sigma_grid in ns.scheduler
    assert ns.info()["steps"] == 4
    # The batch key is the namespace's model and shape: one source for "can share a forward".
    assert ns.shape == RunShape.of(request) == RunShape(8, 32, 48, 4)
    assert batch_key(card.model_id, ns.shape) == "chorus-shapes/8x32x48/4"


def test_domain_is_the_tenant_unless_it_opted_in_to_sharing():
    assert cache_domain("7a4b6c1e-0000-4000-8000-000000000001", cache_shared=False) == (
        "7a4b6c1e-0000-4000-8000-000000000001"
    )
    assert cache_domain("7a4b6c1e-0000-4000-8000-000000000001", cache_shared=True) == SHARED_DOMAIN
