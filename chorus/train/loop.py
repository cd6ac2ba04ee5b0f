"""Flow-matching training loop: resumable, with EMA weights and a time or step budget.

Checkpoints are full model folders (``transformer/`` in ``save_pretrained``
format holding the EMA weights, plus ``chorus_model.json``), so any checkpoint
can be loaded by the adapter or copied into ``models/`` as it is.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import time
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import WanTransformer3DModel
from tqdm import tqdm

from chorus.models.catalog import CARD_FILE
from chorus.models.text import MiniLMTextEncoder
from chorus.train.config import TrainConfig
from chorus.train.data import CaptionStates, ClipStream, LatentPool, LatentStream

STATE_FILE = "trainer_state.pt"


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Warm-up, a long constant phase, then a linear decay to 10% at the end."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    decay_start = int(cfg.decay_start_frac * cfg.max_steps)
    if step < decay_start:
        return cfg.lr
    frac = (step - decay_start) / max(1, cfg.max_steps - decay_start)
    return cfg.lr * (1 - 0.9 * min(1.0, frac))


def sample_sigmas(batch: int, generator: torch.Generator) -> torch.Tensor:
    """Logit-normal noise levels (SD3): most samples mid-trajectory, some at the ends."""
    return torch.sigmoid(torch.randn(batch, generator=generator))


def model_card(cfg: TrainConfig, step: int) -> dict:
    return {
        "model_id": cfg.model_id,
        "revision": f"step-{step}",
        "latent_space": "wan_vae" if cfg.vae else "pixel",
        "text_encoder": "minilm",
        "text_max_tokens": 32,
        "flow_shift": cfg.flow_shift,
        "limits": {
            "frames": [cfg.num_frames],
            "min_side": cfg.side,
            "max_side": cfg.side * 2,
            "side_multiple": 16,
            "default_frames": cfg.num_frames,
            "default_height": cfg.side,
            "default_width": cfg.side,
            "default_steps": 4,
            "default_guidance": 3.0,
            "fps": 8,
        },
    }


def save_checkpoint(
    out: Path,
    card: dict,
    step: int,
    model,
    ema,
    opt,
    rng: np.random.Generator,
    folder: str = "transformer",
    vae_dir: Path | None = None,
) -> None:
    """A fresh folder (EMA weights under ``folder``, card, trainer state; ``vae_dir`` copied in as ``vae/``
    for a latent-space model) replaces ``out/checkpoint``: a run killed at any moment leaves a whole
    checkpoint behind."""
    tmp = out / "checkpoint.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    ema.save_pretrained(tmp / folder)
    if vae_dir is not None:
        shutil.copytree(vae_dir, tmp / "vae")
    (tmp / CARD_FILE).write_text(json.dumps(card, indent=2))
    state = {"step": step, "model": model.state_dict(), "opt": opt.state_dict(), "rng": rng.bit_generator.state}
    torch.save(state, tmp / STATE_FILE)
    final = out / "checkpoint"
    old = out / "checkpoint.old"
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def resume(
    out: Path, model, opt, rng: np.random.Generator, folder: str = "transformer"
) -> tuple[int, WanTransformer3DModel]:
    """Load ``out/checkpoint`` into the model, optimizer and rng if there is one; returns the step reached
    and the EMA weights (read from ``folder`` as ``model``'s class; a frozen copy of ``model`` when starting
    afresh)."""
    ckpt = out / "checkpoint"
    if (ckpt / STATE_FILE).exists():
        state = torch.load(ckpt / STATE_FILE, weights_only=False, map_location="cpu")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        rng.bit_generator.state = state["rng"]
        step, ema = state["step"], type(model).from_pretrained(ckpt / folder)
    else:
        step, ema = 0, copy.deepcopy(model)
    return step, ema.requires_grad_(False).eval()


@torch.no_grad()
def update_ema(ema, model, decay: float) -> None:
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm, 1 - decay)


class RunSettings(Protocol):
    """What every resumable trainer's config has (TrainConfig, chorus.train.vae.VaeConfig)."""

    threads: int
    seed: int
    lr: float
    weight_decay: float

    def to_dict(self) -> dict: ...


def open_run(cfg: RunSettings, out: Path) -> None:
    """The start of a run into ``out``: thread count, the config beside the checkpoints, the seed (set
    before the model is built, so a fresh run's weights follow it)."""
    torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    torch.manual_seed(cfg.seed)


def adamw(model: torch.nn.Module, cfg: RunSettings) -> torch.optim.AdamW:
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))


def optimizer_step(model: torch.nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor, lr: float) -> None:
    """One clipped AdamW step at learning rate ``lr``."""
    for group in opt.param_groups:
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


def train(cfg: TrainConfig, out: Path, time_budget_s: float | None = None, max_steps: int | None = None) -> int:
    """Train (or resume) into ``out``; stop at ``cfg.max_steps``, ``max_steps`` more steps,
    or the time budget, whichever comes first. Returns the step reached."""
    open_run(cfg, out)
    model = WanTransformer3DModel(**cfg.arch.wan_kwargs()).to(cfg.device)  # before the optimizer sees it
    opt = adamw(model, cfg)
    rng = np.random.default_rng(cfg.seed)
    step, ema = resume(out, model, opt, rng)
    model.train()
    ema.to(cfg.device)

    stream = ClipStream(rng, cfg.num_frames, cfg.side)
    vae_dir = Path(cfg.vae) / "vae" if cfg.vae else None
    if vae_dir is not None:
        from diffusers import AutoencoderKLWan

        stream = LatentStream(stream, AutoencoderKLWan.from_pretrained(vae_dir).to(cfg.device))
        if cfg.latent_pool:
            stream = LatentPool(stream, rng, cfg.latent_pool, cfg.fresh_per_step)
    texts = CaptionStates(MiniLMTextEncoder(max_tokens=32))
    empty = texts([""])[0]
    gen = torch.Generator().manual_seed(cfg.seed + step)
    stop_at = min(cfg.max_steps, step + max_steps) if max_steps else cfg.max_steps
    deadline = time.monotonic() + time_budget_s if time_budget_s else math.inf
    log = (out / "loss.jsonl").open("a")
    bar = tqdm(total=stop_at, initial=step, desc="train", unit="step")
    running = None
    while step < stop_at and time.monotonic() < deadline:
        x0, captions = stream.batch(cfg.batch_size)
        x0 = x0.to(cfg.device)
        cond = texts(captions)
        drop = torch.rand(len(captions), generator=gen) < cfg.uncond_prob
        cond[drop] = empty
        cond = cond.to(cfg.device)
        noise = torch.randn(x0.shape, generator=gen).to(cfg.device)
        sigma = sample_sigmas(len(captions), gen).to(cfg.device)
        s = sigma.view(-1, 1, 1, 1, 1)
        xt = (1 - s) * x0 + s * noise
        pred = model(hidden_states=xt, timestep=sigma * 1000, encoder_hidden_states=cond, return_dict=False)[0]
        loss = F.mse_loss(pred, noise - x0)
        optimizer_step(model, opt, loss, lr_at(step, cfg))
        step += 1
        update_ema(ema, model, min(cfg.ema_decay, (1 + step) / (10 + step)))
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{running:.4f}", lr=f"{lr_at(step, cfg):.1e}")
        if step % cfg.log_every == 0:
            log.write(json.dumps({"step": step, "loss": running, "lr": lr_at(step, cfg), "time": time.time()}) + "\n")
            log.flush()
        if step % cfg.checkpoint_every == 0:
            save_checkpoint(out, model_card(cfg, step), step, model, ema, opt, rng, vae_dir=vae_dir)
    save_checkpoint(out, model_card(cfg, step), step, model, ema, opt, rng, vae_dir=vae_dir)
    bar.close()
    log.close()
    return step
