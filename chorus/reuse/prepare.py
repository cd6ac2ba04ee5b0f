"""From a cache lookup's match to a reuse plan and the material the three-stage loop needs."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from chorus.engine.capture import CapturedRun
from chorus.engine.denoise import GenerationRequest
from chorus.engine.sampling import sigma_grid
from chorus.engine.staged import ReuseSource
from chorus.engine.stages import RegionMask
from chorus.models.base import VideoModelAdapter
from chorus.reuse.calibration import Calibration
from chorus.reuse.edit_class import classify_edit
from chorus.reuse.plan import ReusePlan, ReusePolicy
from chorus.reuse.preview import target_maps
from chorus.reuse.prompt_diff import DiffKind, PromptDiff, diff_for
from chorus.reuse.region import RegionConfig, region_mask


def edit_region(
    adapter: VideoModelAdapter, run: CapturedRun, prompt: str, diff: PromptDiff, config: RegionConfig
) -> RegionMask | None:
    """Stage 2's region for an edit: where the source attended to its differing tokens, unioned with where
    the target would attend to its own (chorus.reuse.preview); None when the source stored no maps."""
    maps = run.mean_map()
    if maps is None:
        return None
    mask = region_mask(maps, diff.source_tokens, run.map_grid, run.token_grid, config).mask
    target = target_maps(adapter, run, prompt)
    if target is not None and diff.target_tokens:
        mask = mask | region_mask(target, diff.target_tokens, run.preview_grid, run.token_grid, config).mask
    return RegionMask(mask)


def prepare_reuse(
    adapter: VideoModelAdapter,
    request: GenerationRequest,
    run: CapturedRun,
    similarity: float,
    policy: ReusePolicy | None = None,
    region: RegionConfig | None = None,
    source_id: str | None = None,
    calibration: Calibration | None = None,
    edit_kinds: Collection[str] | None = None,
) -> tuple[ReusePlan, ReuseSource | None]:
    """Diff the prompts, locate the edit's region in the source's and the target's attention maps, read the
    mask as local or global, plan (by the model's ``calibration`` for the edit's ``edit_kinds`` where it
    measured the step count; None: kinds unknown). The source is None when the plan is a miss.
    ``adapter.text_encoder`` must expose ``tokenizer`` and ``max_tokens``."""
    policy, region = policy or ReusePolicy(), region or RegionConfig()
    steps = request.num_inference_steps
    if run.num_steps != steps or run.guidance_scale != request.guidance_scale:
        return ReusePlan(steps, reason="miss: source sampled with other settings", source_id=source_id), None
    if (miss := policy.dissimilar(similarity, steps, source_id)) is not None:  # no tokenizing needed
        return miss, None
    diff = diff_for(adapter.text_encoder, run.prompt, request.prompt)
    mask = edit_region(adapter, run, request.prompt, diff, region) if diff.kind is DiffKind.EDITED else None
    plan = policy.plan_similar(
        similarity,
        diff,
        steps,
        same_inputs=run.seed == request.seed and run.negative_prompt == request.negative_prompt,
        sigmas=sigma_grid(adapter, steps),
        region_fraction=mask.fraction if mask is not None else None,
        stored_steps=run.latents.keys(),
        source_id=source_id,
        edit_class=classify_edit(mask) if diff.kind is DiffKind.EDITED else None,
        edit_kinds=edit_kinds,
        calibration=calibration if policy.calibrated else None,
    )
    # Stage 2 reads the source's context where the plan asks for it (a calibrated plan may not) and the entry
    # stored it for every Stage-2 step; else it runs context-free (an entry whose context did not fit the
    # budget, or one stored before context existed).
    stage2_steps = set(range(plan.stage1, plan.stage1 + plan.stage2))
    plan = replace(plan, context=plan.context and bool(plan.stage2) and stage2_steps <= run.context.keys())
    return plan, (ReuseSource(run, mask) if plan.hit else None)
