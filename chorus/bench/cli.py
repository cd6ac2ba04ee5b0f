"""``chorus bench``: run the speed/quality benchmark and write its JSON, plots and BENCHMARKS.md."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def bench_command(
    quick: Annotated[bool, typer.Option("--quick", help="small traces, 4 and 8 steps (same as --mode quick)")] = False,
    mode: Annotated[
        str, typer.Option(help="quick, medium, full or many-steps (50 steps alone: pass the base model)")
    ] = "full",
    requests: Annotated[int | None, typer.Option(help="similar-stream requests (others get half)")] = None,
    steps: Annotated[str | None, typer.Option(help="step regimes, comma-separated, main first (e.g. 4,50)")] = None,
    repeat_share: Annotated[
        float | None,
        typer.Option(min=0.0, max=0.9, help="exact repeats' share of every stream (default: workload.REPEAT_SHARE)"),
    ] = None,
    model: Annotated[str | None, typer.Option(help="model id (default: CHORUS_DEFAULT_MODEL)")] = None,
    models_dir: Annotated[Path | None, typer.Option(help="installed models (default: CHORUS_MODELS_DIR)")] = None,
    out_dir: Annotated[Path, typer.Option(help="traces/ and results/ go here")] = Path("bench"),
    report: Annotated[Path, typer.Option(help="the markdown report to write")] = Path("BENCHMARKS.md"),
    note: Annotated[str, typer.Option(help="a caveat printed at the top of the report")] = "",
) -> None:
    """Benchmark Chorus against no cache, diffusers' intra-request caches and NIRVANA-style reuse."""
    from chorus.bench.report import write_report, write_results
    from chorus.bench.runner import MODES, Benchmark
    from chorus.cache.embedder import MiniLMEmbedder
    from chorus.config import get_settings
    from chorus.models.loader import UnknownModel, load_adapter

    if (mode := "quick" if quick else mode) not in MODES:
        raise typer.BadParameter(f"one of {', '.join(MODES)}", param_hint="--mode")
    regimes = tuple(int(s) for s in steps.split(",")) if steps else None
    config = MODES[mode].scaled(requests, regimes, repeat_share)
    settings = get_settings()
    try:
        adapter = load_adapter(model or settings.default_model, models_dir or settings.models_dir, settings.device)
    except UnknownModel as exc:
        raise typer.BadParameter(f"no installed model {exc}", param_hint="--model") from exc
    embedder = MiniLMEmbedder(adapter.card.text_max_tokens, settings.device)
    result = Benchmark(adapter, embedder, config, out_dir, log=lambda line: typer.echo(line, err=True)).run()
    path = write_results(result, out_dir / "results")
    write_report(result, out_dir / "results", report, note)
    typer.echo(f"results: {path}\nreport: {report}")
