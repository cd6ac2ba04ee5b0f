"""TGAA and capture processors on a small random Wan: exact when off, measurable when on, cleanly removed."""

import copy
import math

import pytest
import torch

from chorus.cache.entries import run_from_parts, run_metadata, run_tensors
from chorus.engine.capture import CaptureConfig, CapturedRun, apply_capture, remove_capture
from chorus.engine.tgaa import TGAAConfig, apply_tgaa, remove_tgaa
from tests.fixtures.random_wan import random_wan_adapter


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    return random_wan_adapter(tmp_path_factory.mktemp("wan") / "tiny")


def forward(transformer, inputs):
    with torch.inference_mode():
        return transformer(**inputs, return_dict=False)[0]


@pytest.fixture(scope="module")
def inputs(adapter):
    torch.manual_seed(1)
    text = adapter.encode_prompts(["a red circle moving left", "a blue square", "", ""]).states
    return {
        "hidden_states": torch.randn(4, 3, 8, 32, 32),
        "timestep": torch.full((4,), 700.0),
        "encoder_hidden_states": text,
    }


def processors(transformer):
    return [block.attn2.processor for block in transformer.blocks]


def test_tgaa_with_alpha_one_or_no_tokens_is_bit_identical(adapter, inputs):
    transformer = adapter.transformer
    stock, original = forward(transformer, inputs), processors(transformer)
    state = apply_tgaa(transformer, TGAAConfig(alpha=1.0))
    state.set([(2,), (3,)], [1.0, 1.0])
    assert torch.equal(forward(transformer, inputs), stock)
    remove_tgaa(transformer)
    state = apply_tgaa(transformer, TGAAConfig(alpha=3.0))
    assert torch.equal(forward(transformer, inputs), stock)  # no tokens set
    state.set([(2,), (3,)], [3.0, 3.0])
    assert not torch.allclose(forward(transformer, inputs), stock)
    remove_tgaa(transformer)
    assert all(a is b for a, b in zip(processors(transformer), original))
    assert torch.equal(forward(transformer, inputs), stock)


def test_tgaa_raises_attention_mass_on_selected_tokens_and_rows_stay_normalised(adapter):
    """Probe the stock attention kernel: values are built so that head 0 outputs the attention mass on
    the selected tokens and head 1 the total mass of its row."""
    transformer = copy.deepcopy(adapter.transformer)
    attn = transformer.blocks[0].attn2
    dim, head = attn.inner_dim, attn.inner_dim // attn.heads
    selected = [2, 3]
    torch.manual_seed(2)
    text = torch.randn(4, 16, dim)
    text[..., 0] = 0.0
    text[:, selected, 0] = 1.0  # channel 0: is this text token selected
    text[..., 1] = 1.0  # channel 1: always one
    with torch.no_grad():
        attn.to_v.weight.zero_()
        attn.to_v.bias.zero_()
        attn.to_v.weight[:head, 0] = 1.0
        attn.to_v.weight[head:, 1] = 1.0
        attn.to_out[0].weight.copy_(torch.eye(dim))
        attn.to_out[0].bias.zero_()
    hidden = torch.randn(4, 64, dim)
    with torch.inference_mode():
        before = attn(hidden, text)
        alpha = 4.0
        state = apply_tgaa(transformer, TGAAConfig(alpha=alpha, layers=(0,)))
        state.set([selected, selected], [alpha, alpha])  # two prompts: rows 0-1 conditional, 2-3 unconditional
        after = attn(hidden, text)
    mass_before, mass_after = before[..., 0], after[..., 0]
    expected = alpha * mass_before / (alpha * mass_before + 1 - mass_before)
    torch.testing.assert_close(mass_after[:2], expected[:2], atol=1e-5, rtol=1e-5)
    assert (mass_after[:2] > mass_before[:2] + 1e-3).all()
    torch.testing.assert_close(mass_after[2:], mass_before[2:], atol=0, rtol=0)  # unconditional untouched
    torch.testing.assert_close(after[..., head], torch.ones_like(after[..., head]), atol=1e-5, rtol=0)


def test_tgaa_schedule_is_strongest_at_the_first_stage2_step():
    config = TGAAConfig(alpha=5.0, decay=0.5)
    assert [config.alpha_at(j) for j in range(3)] == [5.0, 3.0, 2.0]
    assert TGAAConfig(alpha=3.0).alpha_at(4) == 3.0  # decay 1: constant


def test_capture_keeps_outputs_and_records_normalised_head_averaged_maps(adapter, inputs):
    transformer = adapter.transformer
    stock, original = forward(transformer, inputs), processors(transformer)
    tgaa = apply_tgaa(transformer, TGAAConfig(alpha=2.0))  # capture stacks on TGAA, removal in any order
    state = apply_capture(transformer, CaptureConfig(map_layers=(1,), map_stride=(2, 2, 2)))
    state.begin_forward(0, ["a", None])
    assert torch.equal(forward(transformer, inputs), stock)
    state.end_forward()
    tgaa.set([(2,), ()], [2.0, 2.0])
    state.begin_forward(1, ["a", "b"])
    forward(transformer, inputs)
    remove_tgaa(transformer)
    remove_capture(transformer)
    assert all(a is b for a, b in zip(processors(transformer), original))
    maps, grid = state.maps("a", (4, 8, 8))
    assert grid == (2, 4, 4) and sorted(maps) == [0, 1] and maps[0].dtype == torch.float16
    assert maps[0].shape == (2 * 4 * 4, 32)
    torch.testing.assert_close(maps[0].float().sum(-1), torch.ones(32), atol=2e-3, rtol=0)
    assert sorted(state.maps("b", (4, 8, 8))[0]) == [1]


def test_captured_run_round_trips_and_counts_its_bytes():
    run = CapturedRun(
        "p",
        "",
        1,
        4,
        3.0,
        [101, 7, 102],
        (4, 8, 8),
        (2, 4, 4),
        latents={k: torch.randn(3, 8, 32, 32).half() for k in (1, 2, 4)},
        attn_maps={0: torch.rand(32, 32).half()},
    )
    assert run.nbytes == 3 * 3 * 8 * 32 * 32 * 2 + 32 * 32 * 2
    back = run_from_parts(run_metadata(run), run_tensors(run))
    assert run_metadata(back) == run_metadata(run) and torch.equal(back.latents[4], run.latents[4])
    assert math.isclose(float(back.mean_map().sum()), float(run.attn_maps[0].float().sum()), rel_tol=1e-6)
