"""Running edit pairs with a candidate plan and measuring them against the full computation.

Each pair's source runs once in full with capture; its diff, region, mask reading and edit kinds come from
the service's own code, as a cache hit's would (``chorus.reuse.prepare.edit_region``, ``classify_edit``,
``EditKindClassifier``), and its similarity from the cache key's embedder.
Candidate plans are built here as ``ReusePlan`` directly, never through the policy's gate, and run
through the worker's engine path (``generate_with_reuse``). Compute is the engine's count of
transformer tokens.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from chorus.calibrate.judge import Judge
from chorus.calibrate.pairs import EditPair
from chorus.calibrate.select import Figures, Side, confidence_z
from chorus.engine.capture import CaptureConfig, CapturedRun
from chorus.engine.denoise import DenoiseStats, GenerationRequest
from chorus.engine.staged import ReuseSource, generate_with_reuse
from chorus.engine.stages import RegionMask
from chorus.engine.tgaa import TGAAConfig
from chorus.eval.fidelity import psnr, ssim
from chorus.models.base import VideoModelAdapter
from chorus.reuse.calibration import CalibratedPlan
from chorus.reuse.edit_class import EditClass, classify_edit
from chorus.reuse.edit_kind import EditKindClassifier, PhraseEmbedder
from chorus.reuse.plan import ReusePlan, stage2_applies
from chorus.reuse.prepare import edit_region
from chorus.reuse.prompt_diff import DiffKind, PromptDiff, diff_for
from chorus.reuse.region import RegionConfig

PSNR_CAP_DB = 60.0  # an identical clip's PSNR is infinite: counted as this in a mean
ONE_LOOK_Z = confidence_z(1)  # a one-sided 95% limit read once


@dataclass
class PreparedPair:
    """A pair ready to run: the target request, the source's captured run, and what a hit would read."""

    pair: EditPair
    target: GenerationRequest
    run: CapturedRun
    diff: PromptDiff
    region: RegionMask | None
    edit_class: EditClass
    kinds: frozenset[str]  # what the words change (chorus.reuse.edit_kind): the pair's calibration cell
    similarity: float  # the prompts' cache-key cosine: where the kind's similarity band lies


@dataclass
class Outcome:
    """Clips of a group of pairs under one plan (or none), and the transformer tokens they took."""

    frames: np.ndarray  # uint8 (N, F, H, W, 3)
    tokens: int

    def __len__(self) -> int:
        return len(self.frames)

    def __add__(self, more: Outcome) -> Outcome:
        """This group's clips followed by ``more``'s."""
        return Outcome(np.concatenate([self.frames, more.frames]), self.tokens + more.tokens)

    def head(self, count: int) -> Outcome:
        """The first ``count`` clips of a run without reuse (every such clip takes the same tokens)."""
        assert self.tokens % len(self) == 0, "head() is for runs without reuse, whose clips cost alike"
        return Outcome(self.frames[:count], self.tokens // len(self) * count)


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def prepare_pairs(
    adapter: VideoModelAdapter,
    pairs: Sequence[EditPair],
    steps: int,
    seed: int,
    region: RegionConfig,
    capture: CaptureConfig,
    batch_size: int,
    embedder: PhraseEmbedder,
) -> list[PreparedPair]:
    """Run every source in full with ``capture`` (the service's: its maps are what a hit's region and mask
    reading are read off) storing every latent, each pair's source and target with seeds of their own; keep
    the pairs whose prompts differ by an edit (the others are no edit pairs: identical or unrelated), with
    their kinds and similarity by ``embedder`` (the cache key's)."""
    rng = np.random.default_rng(seed)
    limits = adapter.limits
    sources, targets = [], []
    for pair in pairs:
        sources.append(GenerationRequest.at_defaults(limits, pair.source, int(rng.integers(2**31)), steps))
        targets.append(GenerationRequest.at_defaults(limits, pair.target, int(rng.integers(2**31)), steps))
    every_latent = replace(capture, latent_steps=None)
    runs = [
        run
        for chunk in chunks(sources, batch_size)
        for run in generate_with_reuse(adapter, list(chunk), capture=every_latent).captured
    ]
    classifier = EditKindClassifier(embedder)
    prepared = []
    for pair, target, run in zip(pairs, targets, runs):
        diff = diff_for(adapter.text_encoder, run.prompt, target.prompt)
        if diff.kind is not DiffKind.EDITED:
            continue
        mask = edit_region(adapter, run, target.prompt, diff, region)
        kinds = frozenset(str(k) for k in classifier.classify(pair.source, pair.target))
        source, edited = embedder.embed([pair.source, pair.target])
        similarity = float(source @ edited)
        prepared.append(PreparedPair(pair, target, run, diff, mask, classify_edit(mask), kinds, similarity))
    return prepared


def candidate_plan(candidate: CalibratedPlan, prepared: PreparedPair) -> ReusePlan:
    """``candidate`` as the engine's plan for one pair; Stage 2 dropped where the pair's mask is not local,
    as the policy drops it (``stage2_applies``)."""
    region = prepared.region
    fraction = region.fraction if region is not None else None
    k2 = candidate.k2 if stage2_applies(prepared.edit_class, fraction) else 0
    return ReusePlan(
        prepared.target.num_inference_steps,
        stage1=candidate.k1,
        stage2=k2,
        reason="calibration",
        diff=prepared.diff,
        region_fraction=region.fraction if k2 else None,
        edit_class=prepared.edit_class,
        context=candidate.context,
        halo=candidate.halo,
    )


def run_group(
    adapter: VideoModelAdapter,
    group: Sequence[PreparedPair],
    candidate: CalibratedPlan | None,
    tgaa: TGAAConfig,
    batch_size: int,
) -> Outcome:
    """The group's targets with ``candidate`` reusing each pair's source (None: no reuse)."""
    stats = DenoiseStats()
    frames = []
    for chunk in chunks(group, batch_size):
        requests = [p.target for p in chunk]
        if candidate is None:
            out = generate_with_reuse(adapter, requests, stats=stats)
        else:
            plans = [candidate_plan(candidate, p) for p in chunk]
            sources = [ReuseSource(p.run, p.region) for p in chunk]
            out = generate_with_reuse(adapter, requests, plans, sources, tgaa=tgaa, stats=stats)
        frames.append(out.frames.cpu().numpy())
    return Outcome(np.concatenate(frames), stats.tokens)


def figures(
    outcome: Outcome,
    baseline: Outcome,
    group: Sequence[PreparedPair],
    judge: Judge | None,
    their_scores: dict[str, np.ndarray] | None = None,
    z: float = ONE_LOOK_Z,
) -> Figures:
    """``outcome`` measured against the full computation ``baseline`` of the same targets and seeds: PSNR and
    SSIM always, ``judge``'s scores where one reads the clips (its "edited" score, where it has one, as the
    edited-attribute accuracy), each with the margin of its paired loss at ``z`` (``Figures.margins``).
    ``their_scores``: the judge's scores of ``baseline`` where already read (every candidate shares them)."""
    ours_scores = judge.per_clip(outcome.frames, group, baseline.frames) if judge else {}
    if their_scores is None:
        their_scores = judge.per_clip(baseline.frames, group, baseline.frames) if judge else {}
    scores = {name: float(values.mean()) for name, values in ours_scores.items()}
    baseline_scores = {name: float(values.mean()) for name, values in their_scores.items()}
    return Figures(
        compute=outcome.tokens / baseline.tokens,
        psnr=float(np.mean([min(psnr(a, b), PSNR_CAP_DB) for a, b in zip(outcome.frames, baseline.frames)])),
        ssim=float(np.mean([ssim(a, b) for a, b in zip(outcome.frames, baseline.frames)])),
        accuracy=scores.get("edited"),
        baseline_accuracy=baseline_scores.get("edited"),
        judge=judge.name if judge else None,
        scores=scores or None,
        baseline_scores=baseline_scores or None,
        margins={name: loss_margin(their_scores[name] - ours, z) for name, ours in ours_scores.items()} or None,
        pairs=len(group),
        lower_margins={name: loss_margin(their_scores[name] - ours, z, "lower") for name, ours in ours_scores.items()}
        or None,
    )


def loss_margin(differences: np.ndarray, z: float = ONE_LOOK_Z, side: Side = "upper") -> float:
    """How far from the mean of per-pair ``differences`` (losses in points) its one-sided confidence limit at
    ``z`` (1.645: 95%) lies, on ``side`` (above the mean for "upper", below it for "lower"). Right/wrong
    readings (every difference -100, 0 or 100 points) take Agresti and Min's interval for paired proportions
    (half a pair added to each cell of the 2x2 table): the plain standard error is 0 whenever no pair
    differs, which would pass a plan on 48 agreeing pairs though they cannot show that fewer than ~6% would
    differ. Other scores: ``z`` standard errors of the mean."""
    count = len(differences)
    if count < 2:
        return 0.0
    sign = 1.0 if side == "upper" else -1.0
    if np.isin(differences, (-100.0, 0.0, 100.0)).all():
        worse, better, total = (differences > 0).sum() + 0.5, (differences < 0).sum() + 0.5, count + 2
        adjusted = (worse - better) / total
        error = np.sqrt((worse + better) / total - adjusted**2) / total**0.5
        return float(sign * (100.0 * (adjusted + sign * z * error) - differences.mean()))
    return z * float(np.std(differences, ddof=1)) / count**0.5


def resampled(group: Sequence[PreparedPair], offset: int = 1) -> list[PreparedPair]:
    """The group with each target at another seed: no reuse on these, measured against no reuse at the
    targets' own seeds, is the bound's noise floor (what another valid sample alone loses)."""
    return [replace(p, target=replace(p.target, seed=(p.target.seed + offset) % 2**31)) for p in group]
