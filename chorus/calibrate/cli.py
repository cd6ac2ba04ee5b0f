"""``chorus calibrate``: measure the edit plans a model can take per edit kind and write them into its folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from chorus.calibrate.select import CHECKER_BOUND, JUDGE_BOUND, Bound
from chorus.config import get_settings
from chorus.models.catalog import ModelCard, find_model

if TYPE_CHECKING:
    from chorus.cache.embedder import PromptEmbedder
    from chorus.calibrate.sweep import PairSource


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def calibrate_command(
    model: Annotated[str, typer.Option(help="installed model id (chorus models list)")],
    steps: Annotated[int, typer.Option(help="denoising steps to calibrate")],
    prompts: Annotated[
        Path | None,
        typer.Option(
            help="one prompt per line: pair each with its nearest neighbour (default: the vocabulary's edits)"
        ),
    ] = None,
    pairs: Annotated[
        int,
        typer.Option(
            help="edit pairs per kind, the kind's attributes taking turns (with --prompts: at most this many "
            "in all; with --seed-variants: prompts)"
        ),
    ] = 48,
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", help="an edit kind to calibrate on vocabulary pairs; repeatable (default: every one)"),
    ] = None,
    judge: Annotated[
        Path | None,
        typer.Option(
            help="a CLIP or SigLIP folder (transformers) that judges prompt alignment and typicality, for a "
            "model without the attribute checker"
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="seeds the pairs' draw and their noise")] = 0,
    bound: Annotated[
        list[str] | None,
        typer.Option(
            help="accuracy=POINTS (accuracy lost vs no reuse on every attribute the checker reads, paired), "
            "judge=POINTS (--judge's alignment and typicality lost, paired), psnr=DB, ssim=VALUE (means vs the "
            "full run); repeatable. Default: accuracy=1 on a model the attribute checker judges with "
            "vocabulary pairs, else judge=1"
        ),
    ] = None,
    seed_variants: Annotated[
        bool,
        typer.Option(
            "--seed-variants",
            help="sweep Stage 1 for identical prompts with another seed instead, and write the longest that keeps "
            "a variant new (distance ratio >= 0.8), saves 5% and, on a model the checker judges, loses no "
            "attribute beyond the bound",
        ),
    ] = False,
    k1: Annotated[
        list[int] | None,
        typer.Option("--k1", help="with --seed-variants: a Stage-1 length to try; repeatable (default: the grid's)"),
    ] = None,
    max_k1: Annotated[
        int | None, typer.Option("--max-k1", help="try Stage 1 of at most this many steps (default: every length)")
    ] = None,
    max_k2: Annotated[
        int | None, typer.Option("--max-k2", help="try Stage 2 of at most this many steps (default: every length)")
    ] = None,
    max_pairs: Annotated[
        int | None,
        typer.Option(
            "--max-pairs",
            help="read a candidate not yet shown within the bound, whose lower confidence limits still are, "
            "again on more vocabulary pairs of its kind: 4x as many a look, up to this many, the confidence "
            "split over the looks (default: --pairs, one look)",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="measure and print; write nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print every candidate's figures as JSON")] = False,
    batch_size: Annotated[int, typer.Option(help="clips per denoise batch")] = 48,
) -> None:
    """Run candidate reuse plans on edit pairs of each kind, choose per kind the one that saves the most
    compute within the bound, and write it to the model folder's calibration.json, which the worker's
    reuse policy reads."""
    settings = get_settings()
    card = find_model(model, settings.models_dir)
    if card is None:
        raise _fail(f"model {model!r} is not installed in {settings.models_dir}")
    if not card.limits.min_steps <= steps <= card.limits.max_steps:
        raise _fail(f"--steps must be in [{card.limits.min_steps}, {card.limits.max_steps}] for {model}")
    if prompts is not None and not prompts.is_file():
        raise _fail(f"no such prompt file: {prompts}")
    from chorus.calibrate.pairs import KIND_ATTRIBUTES

    if max_pairs is not None and (max_pairs < pairs or prompts is not None or seed_variants):
        raise _fail("--max-pairs grows vocabulary edit pairs: at least --pairs, without --prompts or --seed-variants")
    if judge is not None and not judge.is_dir():
        raise _fail(f"no such judge folder: {judge}")
    if unknown := sorted(set(kind or ()) - set(KIND_ATTRIBUTES)):
        raise _fail(f"--kind {unknown[0]!r}: vocabulary pairs exist for {', '.join(KIND_ATTRIBUTES)}")
    judged = card.draws_shapes and prompts is None
    try:
        limit = Bound.parse(bound) if bound else CHECKER_BOUND if judged else JUDGE_BOUND
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    if limit.needs_checker and not judged:
        raise _fail("an accuracy bound needs the attribute checker: a shapes model and vocabulary pairs")
    if limit.needs_judge and judge is None:
        raise _fail("a model without the attribute checker is judged by --judge (a CLIP or SigLIP folder)")
    lines = _prompt_lines(prompts) if prompts is not None and not seed_variants else None

    from chorus.cache.embedder import MiniLMEmbedder
    from chorus.engine.sampling import sigma_grid
    from chorus.models.loader import load_adapter
    from chorus.reuse.plan import StepGrid
    from chorus.reuse.session import ReuseConfig

    config = ReuseConfig.from_settings(settings)
    embedder = MiniLMEmbedder(device=settings.device)  # the cache key's: kinds and similarity are read with it
    kinds = kind or list(KIND_ATTRIBUTES)
    edit_pairs = (
        None
        if seed_variants
        else _pairs(card, lines, prompts, pairs, kinds, seed, config.policy.min_similarity, embedder)
    )
    adapter = load_adapter(model, settings.models_dir, settings.device, settings.dtype)
    if seed_variants:
        from chorus.calibrate.seed_variants import choose_variant, format_rows, seed_variant_sweep
        from chorus.reuse.calibration import Calibration, VariantCalibration, write_calibration

        grid = StepGrid(steps, sigma_grid(adapter, steps))
        reusable = grid.reusable_steps(config.policy.min_repair_steps)
        rows = seed_variant_sweep(adapter, pairs, steps, reusable, seed + 1, card.draws_shapes, k1)
        chosen = choose_variant(rows, steps, limit.max_accuracy_loss if card.draws_shapes else None)
        if as_json:
            typer.echo(json.dumps({"rows": [r.to_dict() for r in rows], "chosen_k1": chosen}))
        else:
            typer.echo("\n".join([*format_rows(rows), f"chosen: k1={chosen}" if chosen else "chosen: miss"]))
        if not dry_run:
            cell = VariantCalibration(chosen, pairs, [r.to_dict() for r in rows])
            path = write_calibration(card.path, Calibration(card.model_id, card.revision, {}, {steps: cell}))
            typer.echo(f"wrote {path}", err=True)
        return

    from chorus.calibrate.judge import CheckerJudge, ClipJudge
    from chorus.calibrate.sweep import calibrate, format_report
    from chorus.reuse.calibration import write_calibration

    report = calibrate(
        adapter,
        edit_pairs,
        steps,
        limit,
        judge=CheckerJudge() if judged else ClipJudge(judge, settings.device) if judge is not None else None,
        embedder=embedder,
        seed=seed + 1,
        policy=config.policy,
        region=config.region,
        tgaa=config.tgaa,
        capture=config.capture,
        batch_size=batch_size,
        progress=lambda line: typer.echo(line, err=True),
        max_k1=max_k1,
        max_k2=max_k2,
        max_pairs=max_pairs,
        more_pairs=_more_pairs(card, seed) if lines is None else None,
    )
    if not report.kinds:
        raise _fail("none of the pairs is an edit (their prompts are identical or unrelated)")
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else "\n".join(format_report(report)))
    if not dry_run:
        path = write_calibration(card.path, report.calibration(card.model_id, card.revision))
        typer.echo(f"wrote {path}", err=True)


def _prompt_lines(prompts: Path) -> list[str]:
    """The prompt file's distinct prompts; exits with code 2 (before any model loads) where it gives fewer than
    two."""
    from chorus.calibrate.pairs import read_prompts

    lines = read_prompts(prompts)
    if len(lines) < 2:
        raise _fail(f"{prompts} holds {len(lines)} distinct prompt(s); pairing needs at least 2")
    return lines


def _more_pairs(card: ModelCard, seed: int) -> PairSource:
    """Fresh vocabulary pairs of a kind, for a calibration that reads a candidate again on more pairs."""
    from chorus.calibrate.pairs import fresh_kind_pairs
    from chorus.eval.checker import ATTRIBUTES

    readable = ATTRIBUTES if card.draws_shapes else None
    return lambda kind, count, round_: fresh_kind_pairs(kind, count, round_, readable, seed)


def _pairs(
    card: ModelCard,
    lines: list[str] | None,
    prompts: Path | None,
    count: int,
    kinds: list[str],
    seed: int,
    min_similarity: float,
    embedder: PromptEmbedder,
) -> list:
    """``count`` vocabulary edit pairs per kind (attributes the checker reads, on a model it judges), or the
    neighbour pairs of the prompt file's ``lines``; exits with code 2 where they give no pair."""
    from chorus.calibrate.pairs import kind_pairs, neighbour_pairs

    if lines is None:
        from chorus.eval.checker import ATTRIBUTES

        return kind_pairs(count, kinds, ATTRIBUTES if card.draws_shapes else None, seed)
    found = neighbour_pairs(lines, embedder, min_similarity, count)
    if not found:
        raise _fail(f"no prompt in {prompts} has a neighbour at cosine similarity >= {min_similarity}")
    return found
