"""Step distillation: a student that takes the teacher's many-step path in a few steps, guidance included.

At a point ``sigma_i`` of the student's schedule, a noisy clip ``x`` is taken down to ``sigma_{i+1}``
by the teacher's own finer Euler steps (its schedule with ``teacher_steps``, classifier-free guidance
on); the student learns the one guided velocity that lands on the same point,
``v* = (x - x_teacher) / (sigma_i - sigma_{i+1})``. Its conditional and unconditional branches both
learn through the guided combination, so the student is sampled exactly like the teacher (the same
scheduler, shift and guidance scale), only with fewer steps. The teacher's grid contains the
student's (diffusers spaces both evenly before the shift), so every teacher step lies inside one
student step.

Resumable like ``loop.train``: ``checkpoint/`` holds the EMA student as a model folder (drop-in for
``models/``) and ``trainer_state.pt``.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import WanTransformer3DModel
from tqdm import tqdm

from chorus.engine.sampling import flow_match_scheduler
from chorus.models.catalog import CARD_FILE, ModelCard
from chorus.models.text import MiniLMTextEncoder
from chorus.train.data import CaptionStates, ClipStream, LatentStream
from chorus.train.loop import optimizer_step, resume, save_checkpoint, update_ema


@dataclass
class DistillConfig:
    student_steps: int = 4
    teacher_steps: int = 16
    batch_size: int = 16
    lr: float = 1e-4
    ema_decay: float = 0.995
    max_steps: int = 6000
    checkpoint_every: int = 100
    log_every: int = 10
    seed: int = 0
    threads: int = 2
    device: str = "cpu"  # cuda on a GPU machine
    flow_shift: float | None = None  # None: the teacher card's
    sigma_grid: str | None = None  # None: the teacher card's (see ModelCard.sigma_grid)


def schedule(shift: float, steps: int, grid: str = "default") -> torch.Tensor:
    """The sampler's sigmas (steps + 1 values, 1 down to 0), as the engine's scheduler makes them."""
    return flow_match_scheduler(shift, grid, steps).sigmas.float()


def teacher_grid(student: torch.Tensor, teacher: torch.Tensor, i: int) -> torch.Tensor:
    """The teacher's sigmas from student point i to i + 1, both ends included."""
    hi, lo = student[i], student[i + 1]
    inside = teacher[(teacher < hi - 1e-6) & (teacher > lo + 1e-6)]
    return torch.cat([hi.view(1), inside, lo.view(1)])


def guided(model: WanTransformer3DModel, x: torch.Tensor, sigma: float, text: torch.Tensor, scale: float):
    """Guided velocity at one noise level; ``text`` is (2B, L, D), conditional half first."""
    both = model(
        hidden_states=torch.cat([x, x]),
        timestep=torch.full((2 * len(x),), sigma * 1000.0, device=x.device),
        encoder_hidden_states=text,
        return_dict=False,
    )[0]
    cond, uncond = both.chunk(2)
    return uncond + scale * (cond - uncond)


def distill(
    teacher_dir: Path,
    out: Path,
    cfg: DistillConfig,
    time_budget_s: float | None = None,
    max_steps: int | None = None,
    init_dir: Path | None = None,
) -> int:
    """Distill the model folder ``teacher_dir`` into ``out`` (resumed if it holds a checkpoint).

    ``init_dir``: a model folder whose transformer the student starts from (default: the teacher's), e.g.
    an earlier student moved to a new grid. ``cfg.flow_shift`` / ``cfg.sigma_grid`` replace the
    teacher card's: teacher and student are then both sampled on that grid, and the student's card says so."""
    torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    # The teacher's measured quality does not carry over: record_model_quality measures the student.
    card = {k: v for k, v in json.loads((teacher_dir / CARD_FILE).read_text()).items() if k != "quality_48"}
    card |= {k: v for k in ("flow_shift", "sigma_grid") if (v := getattr(cfg, k)) is not None}
    scale = float(card["limits"]["default_guidance"])
    teacher = WanTransformer3DModel.from_pretrained(teacher_dir / "transformer").requires_grad_(False).eval()
    if init_dir is None:
        student = copy.deepcopy(teacher)
    else:
        student = WanTransformer3DModel.from_pretrained(init_dir / "transformer")
    student.to(cfg.device).requires_grad_(True).train()  # before the optimizer sees it
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=0.0, betas=(0.9, 0.99))
    rng = np.random.default_rng(cfg.seed)
    step, ema = resume(out, student, opt, rng)
    teacher.to(cfg.device)
    ema.to(cfg.device)

    shift, grid = float(card["flow_shift"]), card.get("sigma_grid", "default")
    student_sigmas = schedule(shift, cfg.student_steps, grid)
    teacher_sigmas = schedule(shift, cfg.teacher_steps, grid)
    # Student steps that move (diffusers' last step goes from ~0.004 to 0): sampled evenly.
    moving = [i for i in range(cfg.student_steps) if student_sigmas[i] - student_sigmas[i + 1] > 0.01]
    limits = ModelCard.load(teacher_dir).limits
    stream = ClipStream(rng, limits.default_frames, limits.default_height)
    vae_dir = teacher_dir / "vae" if card.get("latent_space") == "wan_vae" else None
    if vae_dir is not None:
        from diffusers import AutoencoderKLWan

        stream = LatentStream(stream, AutoencoderKLWan.from_pretrained(vae_dir).to(cfg.device))
    texts = CaptionStates(MiniLMTextEncoder(max_tokens=card.get("text_max_tokens", 32)))
    gen = torch.Generator().manual_seed(cfg.seed + step)
    stop_at = min(cfg.max_steps, step + max_steps) if max_steps else cfg.max_steps
    deadline = time.monotonic() + time_budget_s if time_budget_s else math.inf
    log = (out / "loss.jsonl").open("a")
    bar = tqdm(total=stop_at, initial=step, desc="distill", unit="step")
    running = None
    revision = f"{card['revision']}-distill{cfg.student_steps}"
    while step < stop_at and time.monotonic() < deadline:
        x0, captions = stream.batch(cfg.batch_size)
        x0 = x0.to(cfg.device)
        text = torch.cat([texts(captions), texts([""] * len(captions))]).to(cfg.device)
        i = moving[int(rng.integers(len(moving)))]
        hi, lo = float(student_sigmas[i]), float(student_sigmas[i + 1])
        x = (1 - hi) * x0 + hi * torch.randn(x0.shape, generator=gen).to(cfg.device)
        with torch.no_grad():
            target = x
            grid = teacher_grid(student_sigmas, teacher_sigmas, i).tolist()
            for s, s_next in zip(grid, grid[1:]):
                target = target + (s_next - s) * guided(teacher, target, s, text, scale)
            velocity = (x - target) / (hi - lo)
        loss = F.mse_loss(guided(student, x, hi, text, scale), velocity)
        optimizer_step(student, opt, loss, cfg.lr)
        step += 1
        update_ema(ema, student, cfg.ema_decay)
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{running:.4f}")
        if step % cfg.log_every == 0:
            log.write(json.dumps({"step": step, "loss": running, "time": time.time()}) + "\n")
            log.flush()
        if step % cfg.checkpoint_every == 0:
            save_checkpoint(
                out, card | {"revision": f"{revision}-{step}"}, step, student, ema, opt, rng, vae_dir=vae_dir
            )
    if step % cfg.checkpoint_every:
        save_checkpoint(out, card | {"revision": f"{revision}-{step}"}, step, student, ema, opt, rng, vae_dir=vae_dir)
    bar.close()
    log.close()
    return step
