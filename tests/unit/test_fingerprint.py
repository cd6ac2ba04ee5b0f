import dataclasses

import pytest

from chorus.config import REPO_MODELS_DIR
from chorus.engine.denoise import GenerationRequest
from chorus.fingerprint import clean_prompt, fingerprint_fields, request_fingerprint
from chorus.models.catalog import find_model

CARD = find_model("chorus-shapes", REPO_MODELS_DIR)
BASE = GenerationRequest(prompt="a red circle moves right", negative_prompt="blurry", seed=7)


def test_equal_requests_have_equal_fingerprints():
    assert request_fingerprint(CARD, BASE) == request_fingerprint(CARD, dataclasses.replace(BASE))


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": "a blue circle moves right"},
        {"negative_prompt": ""},
        {"seed": 8},
        {"num_inference_steps": 8},
        {"guidance_scale": 1.0},
        {"num_frames": 16},
        {"height": 48},
        {"width": 48},
    ],
)
def test_every_output_changing_input_changes_it(change):
    assert request_fingerprint(CARD, BASE) != request_fingerprint(CARD, dataclasses.replace(BASE, **change))


@pytest.mark.parametrize(
    "change",
    [{"revision": "other"}, {"model_id": "other"}, {"lora": {"path": "x.safetensors"}}, {"flow_shift": 9.0}],
)
def test_the_model_revision_lora_and_sampler_change_it(change):
    assert request_fingerprint(CARD, BASE) != request_fingerprint(dataclasses.replace(CARD, **change), BASE)


def test_numbers_hash_alike_whatever_their_type():
    as_floats = dataclasses.replace(BASE, guidance_scale=3, seed=7.0, height=32.0)
    assert request_fingerprint(CARD, BASE) == request_fingerprint(CARD, as_floats)


def test_prompts_are_compared_after_the_encoders_cleaning():
    spaced = dataclasses.replace(BASE, prompt="  a red circle\n moves   right ")
    assert request_fingerprint(CARD, spaced) == request_fingerprint(CARD, BASE)
    # html entities are unescaped only by UMT5's cleaning: MiniLM would see other tokens.
    assert clean_prompt("salt &amp; pepper", "umt5") == "salt & pepper"
    assert clean_prompt("salt &amp; pepper", "minilm") == "salt &amp; pepper"
    assert fingerprint_fields(dataclasses.replace(CARD, text_encoder="umt5"), BASE)["prompt"] == BASE.prompt


def test_case_is_never_folded():
    # A false equality would serve another request's video: cleaning is never broader than the encoder's.
    assert request_fingerprint(CARD, dataclasses.replace(BASE, prompt="A red circle moves right")) != (
        request_fingerprint(CARD, BASE)
    )
