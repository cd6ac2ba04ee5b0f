"""The ``chorus`` command line. Each command group lives beside the code it drives."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chorus import auth_cli, tenants_cli
from chorus.bench.cli import bench_command
from chorus.cache import cli as cache_cli
from chorus.calibrate.cli import calibrate_command
from chorus.db import cli as db_cli
from chorus.eval.cli import eval_command
from chorus.generate import generate_command
from chorus.metrics.queue_cli import queue_command
from chorus.models import cli as models_cli
from chorus.models.catalog import CARD_FILE
from chorus.webhooks import cli as webhooks_cli

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
    device: Annotated[str | None, typer.Option(help="override the config's torch device (cuda)")] = None,
    vae: Annotated[Path | None, typer.Option(help="train in this train-vae checkpoint's latent space")] = None,
) -> None:
    """Train (or resume training) the project's own text-to-video model."""
    from chorus.train.config import TrainConfig
    from chorus.train.loop import train as run_training

    if not config.is_file():
        raise typer.BadParameter(f"no such config file: {config}", param_hint="--config")
    cfg = TrainConfig.from_file(config)
    if seed is not None:
        cfg.seed = seed
    if device is not None:
        cfg.device = device
    if vae is not None:
        cfg.vae = str(vae)
    step = run_training(cfg, out, time_budget_s=minutes * 60 if minutes else None, max_steps=steps)
    typer.echo(f"reached step {step}; checkpoint in {out / 'checkpoint'}")


@app.command("train-vae")
def train_vae(
    config: Annotated[Path | None, typer.Option(help="JSON autoencoder config (default: VaeConfig's)")] = None,
    out: Annotated[Path, typer.Option(help="run folder (resumed if it holds a checkpoint)")] = Path(
        "runs/chorus-shapes-vae"
    ),
    minutes: Annotated[float | None, typer.Option(help="stop after this many minutes")] = None,
    steps: Annotated[int | None, typer.Option(help="stop after this many more steps")] = None,
    eval_specs: Annotated[int, typer.Option(help="then score the checker on this many reconstructions")] = 0,
    device: Annotated[str | None, typer.Option(help="override the config's torch device (cuda)")] = None,
) -> None:
    """Train (or resume) a small AutoencoderKLWan on the procedural clips (the wan_vae latent space)."""
    import json

    from chorus.train.vae import VaeConfig, main_eval
    from chorus.train.vae import train_vae as run_vae

    if config is not None and not config.is_file():
        raise typer.BadParameter(f"no such config file: {config}", param_hint="--config")
    cfg = VaeConfig.from_file(config)
    if device is not None:
        cfg.device = device
    step = run_vae(cfg, out, time_budget_s=minutes * 60 if minutes else None, max_steps=steps)
    typer.echo(f"reached step {step}; checkpoint in {out / 'checkpoint'}")
    if eval_specs:
        for held_out in (False, True):
            result = main_eval(out / "checkpoint", eval_specs, held_out=held_out, device=cfg.device)
            typer.echo(json.dumps({"held_out": held_out, "step": step, **result}))


@app.command()
def distill(
    teacher: Annotated[Path, typer.Option(help="model folder to distill (transformer/ + chorus_model.json)")] = Path(
        "models/chorus-shapes"
    ),
    out: Annotated[Path, typer.Option(help="run folder (resumed if it holds a checkpoint)")] = Path(
        "runs/chorus-shapes-distill"
    ),
    student_steps: Annotated[int, typer.Option(help="steps the student samples with")] = 4,
    teacher_steps: Annotated[int, typer.Option(help="steps of the teacher's path it learns to follow")] = 16,
    minutes: Annotated[float | None, typer.Option(help="stop after this many minutes")] = None,
    steps: Annotated[int | None, typer.Option(help="stop after this many more steps")] = None,
    init: Annotated[Path | None, typer.Option(help="model folder the student starts from (default: teacher)")] = None,
    flow_shift: Annotated[float | None, typer.Option(help="sample on this shift (default: the teacher card's)")] = None,
    sigma_grid: Annotated[str | None, typer.Option(help="'linear' (Wan's grid) or 'default' (teacher card's)")] = None,
    threads: Annotated[int, typer.Option(help="torch threads")] = 2,
    device: Annotated[str, typer.Option(help="torch device (cuda)")] = "cpu",
) -> None:
    """Step-distill a model: the student follows the teacher's many-step path in a few steps."""
    from chorus.train.distill import DistillConfig
    from chorus.train.distill import distill as run_distill

    if not (teacher / "transformer").is_dir() or not (teacher / CARD_FILE).is_file():
        raise typer.BadParameter(f"not a model folder: {teacher}", param_hint="--teacher")
    if teacher_steps % student_steps or teacher_steps <= student_steps:
        raise typer.BadParameter("must be a multiple of --student-steps, and larger", param_hint="--teacher-steps")
    cfg = DistillConfig(
        student_steps=student_steps,
        teacher_steps=teacher_steps,
        threads=threads,
        device=device,
        flow_shift=flow_shift,
        sigma_grid=sigma_grid,
    )
    budget = minutes * 60 if minutes else None
    step = run_distill(teacher, out, cfg, time_budget_s=budget, max_steps=steps, init_dir=init)
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


DataDir = Annotated[Path, typer.Option(help="where the embedded Postgres, Redis, store and logs keep their data")]
Model = Annotated[
    str | None, typer.Option(help="the model jobs run on (a folder under CHORUS_MODELS_DIR; default: the server's)")
]


@app.command()
def demo(
    prompt: Annotated[str, typer.Argument(help="what the video shows")] = "a red square moving right",
    out: Annotated[Path, typer.Option(help="where to write the MP4")] = Path("demo.mp4"),
    data_dir: DataDir = Path("chorus-data"),
    seed: Annotated[int | None, typer.Option(help="fixed seed (default: random)")] = None,
    model: Model = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the job")] = 600,
) -> None:
    """Start the embedded stack, render one video through the HTTP API, save it, print the job, stop.

    A worker that cannot load the model makes this fail at once (exit code 2) with the load error."""
    import json

    from chorus.embedded import EmbeddedError, run_demo

    def report(line: str) -> None:
        typer.echo(line, err=True)  # stdout is the job JSON only

    generation = {} if seed is None else {"seed": seed}
    try:
        job = run_demo(prompt, out, data_dir, timeout, report=report, model=model, **generation)
    except EmbeddedError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(job, indent=2))
    if job["status"] != "succeeded":
        raise typer.Exit(1)


@app.command()
def up(
    data_dir: DataDir = Path("chorus-data"),
    port: Annotated[int, typer.Option(help="API port on 127.0.0.1")] = 8000,
    model: Model = None,
    allow_private_webhooks: Annotated[
        bool,
        typer.Option(
            help="let webhooks reach loopback and private addresses (local receivers in development); "
            "link-local and cloud metadata addresses stay refused"
        ),
    ] = False,
) -> None:
    """Run the embedded stack (Postgres, Redis, local store, API, one worker, webhook delivery) until Ctrl-C."""
    from chorus.embedded import EmbeddedError, serve

    try:
        serve(data_dir, port, report=typer.echo, model=model, allow_private_webhooks=allow_private_webhooks)
    except EmbeddedError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


app.command("eval")(eval_command)
app.command("queue")(queue_command)
app.command("bench")(bench_command)
app.command("generate")(generate_command)
app.command("calibrate")(calibrate_command)
app.add_typer(models_cli.app, name="models")
app.add_typer(auth_cli.app, name="keys")
app.add_typer(tenants_cli.app, name="tenants")
app.add_typer(db_cli.app, name="db")
app.add_typer(cache_cli.app, name="cache")
app.add_typer(webhooks_cli.app, name="webhooks")

if __name__ == "__main__":
    app()
