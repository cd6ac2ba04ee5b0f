"""Reuse on a Wan2.1 folder with its multistep UniPC: every request steps a scheduler of its own, restarted
where its latent was reused, so a hit in the batch never disturbs a miss's solver history; the cache
namespace carries the scheduler's identity and grid."""

from dataclasses import replace

import pytest
import torch

from chorus.engine.capture import CaptureConfig
from chorus.engine.denoise import GenerationRequest
from chorus.engine.staged import ReuseSource, generate_with_reuse
from chorus.engine.stages import RegionMask
from chorus.engine.subset_forward import patchify
from chorus.models.catalog import ModelCard
from chorus.models.loader import adapter_for
from chorus.models.register import Options, add_model
from chorus.namespace import Namespace
from chorus.reuse.plan import ReusePlan
from tests.fixtures.wan_folder import write_wan_folder

SOURCE = GenerationRequest(
    "a red square moving right", "low quality", num_frames=9, height=32, width=48, num_inference_steps=6, seed=2
)
EXACT = CaptureConfig(latent_dtype=torch.float32)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("wan21")
    folder = write_wan_folder(root / "wan")
    return folder, root / "models"


@pytest.fixture(scope="module")
def adapter(installed):
    folder, models = installed
    return adapter_for(ModelCard.load(add_model(folder, models, Options(model_id="unipc"))))


@pytest.fixture(scope="module")
def source(adapter):
    out = generate_with_reuse(adapter, [SOURCE], capture=EXACT)
    return out.captured[0], out.latents


def test_a_stage1_hit_beside_a_miss_leaves_the_miss_exact(adapter, source):
    run, final = source
    variant = replace(SOURCE, seed=9)
    alone = generate_with_reuse(adapter, [variant], [ReusePlan(6, 3, 0)], [ReuseSource(run)]).latents
    both = generate_with_reuse(adapter, [SOURCE, variant], [ReusePlan(6), ReusePlan(6, 3, 0)], [None, ReuseSource(run)])
    torch.testing.assert_close(both.latents[:1], final, atol=1e-5, rtol=0)
    torch.testing.assert_close(both.latents[1:], alone, atol=1e-5, rtol=0)


def test_a_restarted_unipc_stays_close_to_the_full_run(adapter, source):
    run, final = source
    for k1 in (2, 4):  # first-order restart, then the solver's order builds up again
        out = generate_with_reuse(adapter, [SOURCE], [ReusePlan(6, k1, 0)], [ReuseSource(run)]).latents
        error = (out - final).abs().max().item()
        assert 0 < error < 0.05 * final.abs().max().item()
    replay = generate_with_reuse(adapter, [SOURCE], [ReusePlan(6, 6, 0)], [ReuseSource(run)]).latents
    assert torch.equal(replay, final)


def test_stage2_on_unipc_recomputes_the_region_and_takes_the_rest_from_the_source(adapter, source):
    run, _ = source
    mask = torch.zeros(3, 2, 3, dtype=torch.bool)  # token grid of a 3x4x6 latent, patch (1, 2, 2)
    mask[:, :, 1] = True
    edit = replace(SOURCE, prompt="a green square moving right")
    plan = ReusePlan(6, 1, 5)  # Stage 2 to the end: the final latent's outside is the source's
    out = generate_with_reuse(adapter, [edit], [plan], [ReuseSource(run, RegionMask(mask))]).latents
    ours, theirs = patchify(out, (1, 2, 2))[0], patchify(run.latents[6][None], (1, 2, 2))[0]
    inside = mask.flatten()
    torch.testing.assert_close(ours[~inside], theirs[~inside], atol=1e-6, rtol=0)
    assert (ours[inside] - theirs[inside]).abs().max() > 1e-3


def test_namespace_carries_the_scheduler_identity_and_grid(installed):
    folder, models = installed

    def key(options: Options) -> str:
        card = ModelCard.load(add_model(folder, models, replace(options, model_id="ns")))
        request = GenerationRequest("p", num_frames=9, height=32, width=48, num_inference_steps=4, guidance_scale=1.0)
        ns = Namespace.for_request(card, request, embedder="e")
        return ns.scheduler, ns.key

    unipc, shifted, pinned, renoised = (
        key(Options()),
        key(Options(flow_shift=5.0)),
        key(Options(sigmas=(1.0, 0.75, 0.5, 0.25), flow_shift=5.0)),
        key(Options(sigmas=(1.0, 0.75, 0.5, 0.25), flow_shift=5.0, renoise=True)),
    )
    assert unipc[0].startswith("UniPCMultistepScheduler(") and '"flow_shift":3.0' in unipc[0]
    assert "sigmas=1,0.75,0.5,0.25" in pinned[0] and '"stochastic_sampling":true' in renoised[0]
    assert len({unipc[1], shifted[1], pinned[1], renoised[1]}) == 4
    assert key(Options()) == unipc
