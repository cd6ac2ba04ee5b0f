"""``chorus eval``: sample prompts with a model and print how well it follows them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

_TOP_ERRORS = 3


def eval_command(
    steps: Annotated[int, typer.Option(help="denoising steps")] = 4,
    num_prompts: Annotated[int, typer.Option(help="prompts to sample and judge")] = 200,
    held_out: Annotated[bool, typer.Option("--held-out", help="colour x shape pairs never seen in training")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    model: Annotated[str | None, typer.Option(help="model id (default: CHORUS_DEFAULT_MODEL)")] = None,
    guidance: Annotated[float | None, typer.Option(help="CFG scale (default: the model card's)")] = None,
    seed: Annotated[int, typer.Option(help="seed of the prompt draw, phrasings and noise")] = 0,
    batch_size: Annotated[int, typer.Option(help="clips per denoise batch")] = 16,
    grid: Annotated[Path | None, typer.Option(help="save a PNG of the first clips with their readings")] = None,
) -> None:
    """Judge a model's attribute accuracy (colour, shape, direction, background, size, speed) on sampled
    prompts; "all" is the first four all right, size and speed are judged on the prompts that name them."""
    from chorus.config import get_settings
    from chorus.eval.sample import evaluate
    from chorus.models.loader import UnknownModel, load_adapter

    settings = get_settings()
    try:
        adapter = load_adapter(model or settings.default_model, settings.models_dir, settings.device)
    except UnknownModel as exc:
        raise typer.BadParameter(f"no installed model {exc}", param_hint="--model") from exc
    result = evaluate(adapter, steps, num_prompts, held_out, seed, guidance, batch_size, grid)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        Console().print(_table(adapter.model_id, adapter.revision, result))


def _table(model_id: str, revision: str, result: dict[str, Any]) -> Table:
    # Imported here: the checker pulls numpy/scipy/PIL, which the torch-free API image (chorus keys…) lacks.
    from chorus.eval.checker import ATTRIBUTES, CORE

    split = "held-out" if result["held_out"] else "held-in"
    table = Table(title=f"{model_id}@{revision}: {result['n']} {split} prompts, {result['steps']} steps")
    table.add_column("attribute")
    table.add_column("accuracy", justify="right")
    table.add_column("prompts judged", justify="right")
    table.add_column("most common errors (prompted->read)")
    rows = [(a, a, result["judged"][a]) for a in ATTRIBUTES] + [(f"all ({', '.join(CORE)})", "all", result["n"])]
    for label, key, judged in rows:
        errors = list(result["errors"].get(key, {}).items())[:_TOP_ERRORS]
        accuracy = "–" if key not in result else f"{result[key]:.1%}"  # no prompt named it
        table.add_row(label, accuracy, str(judged), ", ".join(f"{e} x{n}" for e, n in errors))
    table.add_section()
    table.add_row("s/clip (batch 1)", f"{result['seconds_per_clip']:.3f}", "", "")
    table.add_row("s/clip (batched)", f"{result['batched_seconds_per_clip']:.3f}", "", "")
    table.add_row("temporal change vs data", f"{result['temporal_consistency']:.2f}", "", "1.0 = moves like the data")
    return table
