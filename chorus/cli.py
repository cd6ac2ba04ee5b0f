"""The ``chorus`` command line. Each command group lives beside the code it drives."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chorus import auth_cli
from chorus.db import cli as db_cli

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Chorus: cached text-to-video serving.")


@app.callback()
def main() -> None:
    """Chorus: serve text-to-video models faster by reusing work across similar requests."""


@app.command()
def train(
    config: Annotated[Path, typer.Option(help="JSON training config")] = Path("configs/chorus-shapes.json"),
    out: Annotated[Path, typer.Option(help="run folder (resumed if it holds a checkpoint)")] = Path(
        "runs/chorus-shapes"
    ),
    minutes: Annotated[float | None, typer.Option(help="stop after this many minutes")] = None,
    steps: Annotated[int | None, typer.Option(help="stop after this many more steps")] = None,
    seed: Annotated[int | None, typer.Option(help="override the config's seed")] = None,
) -> None:
    """Train (or resume training) the project's own text-to-video model."""
    from chorus.train.config import TrainConfig
    from chorus.train.loop import train as run_training

    if not config.is_file():
        raise typer.BadParameter(f"no such config file: {config}", param_hint="--config")
    cfg = TrainConfig.from_file(config)
    if seed is not None:
        cfg.seed = seed
    step = run_training(cfg, out, time_budget_s=minutes * 60 if minutes else None, max_steps=steps)
    typer.echo(f"reached step {step}; checkpoint in {out / 'checkpoint'}")


@app.command()
def worker(
    pool: Annotated[str, typer.Option(help="Celery pool: prefork (enforces the hard time limit) or solo")] = "prefork",
    concurrency: Annotated[int, typer.Option(help="jobs at once (one per GPU)")] = 1,
    loglevel: Annotated[str, typer.Option(help="log level")] = "info",
) -> None:
    """Run a worker: claims queued jobs (batching compatible ones), renders them, uploads the videos."""
    from worker.start import start

    start(pool=pool, concurrency=concurrency, loglevel=loglevel)


app.add_typer(auth_cli.app, name="keys")
app.add_typer(db_cli.app, name="db")

if __name__ == "__main__":
    app()
