"""``chorus models add PATH`` and ``chorus models list``: install a diffusers Wan2.1 folder, see what is installed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chorus.config import get_settings
from chorus.jobs.schemas import LoraChoice
from chorus.models.catalog import find_model, list_models
from chorus.models.register import FolderError, Options, add_model

app = typer.Typer(no_args_is_help=True, help="Install and list models (diffusers Wan2.1 folders).")


def _sigmas(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(s) for s in text.split(","))
    except ValueError as exc:
        raise typer.BadParameter("a comma-separated list of numbers", param_hint="--sigmas") from exc


@app.command("add")
def add(
    path: Annotated[Path, typer.Argument(help="a diffusers Wan2.1 folder (model_index.json, transformer/, vae/ ...)")],
    model_id: Annotated[str | None, typer.Option("--id", help="model id (default: the folder's name)")] = None,
    lora: Annotated[Path | None, typer.Option(help="LoRA .safetensors, fused into the transformer at load")] = None,
    lora_scale: Annotated[float, typer.Option(help="the LoRA's weight")] = 1.0,
    sigmas: Annotated[str | None, typer.Option(help="pinned sigmas S1,S2,... (shifted by the flow shift)")] = None,
    flow_shift: Annotated[float | None, typer.Option(help="scheduler shift (default: the folder's)")] = None,
    guidance: Annotated[float | None, typer.Option(help="default guidance (5, or 1 with --sigmas)")] = None,
    renoise: Annotated[
        bool, typer.Option(help="re-noising sampler of step distillations: predict x0, fresh noise at the next sigma")
    ] = False,
) -> None:
    """Write the model's card under CHORUS_MODELS_DIR; the weights stay where they are."""
    options = Options(model_id, lora, lora_scale, _sigmas(sigmas), flow_shift, guidance, renoise)
    try:
        target = add_model(path, get_settings().models_dir, options)
    except FolderError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"installed {target.name} ({target})")


@app.command("add-lora")
def add_lora_command(
    model: Annotated[str, typer.Argument(help="an installed model id")],
    file: Annotated[Path, typer.Argument(help="LoRA .safetensors (diffusers, original Wan or musubi naming)")],
    name: Annotated[str, typer.Option(help="what requests call it: lora.name")],
) -> None:
    """Register a LoRA for MODEL, checked against its transformer; requests pick it with
    `lora: {"name", "scale"}` and workers load it unfused, no restart needed."""
    from chorus.models.lora import LoraError, add_lora

    card = find_model(model, get_settings().models_dir)
    if card is None:
        typer.echo(f"error: no model {model!r} installed", err=True)
        raise typer.Exit(2)
    try:
        LoraChoice(name=name)
        layers = add_lora(card, file, name)
    except (LoraError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"registered LoRA {name!r} for {model} ({layers} layers)")


@app.command("list")
def list_command() -> None:
    """The installed model ids, one a line."""
    for model_id in list_models(get_settings().models_dir):
        typer.echo(model_id)
