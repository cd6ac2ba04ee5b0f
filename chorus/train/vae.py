"""Train a small ``AutoencoderKLWan`` on the procedural clips: the latent space a Wan-structured model
denoises (the card's ``latent_space: wan_vae``).

Resumable like ``loop.train``: ``checkpoint/`` holds the EMA autoencoder under ``vae/`` (its config carries
the per-channel ``latents_mean`` / ``latents_std`` the adapter normalises with) and ``trainer_state.pt``;
``loss.jsonl`` is appended to. The loss is reconstruction (L1 + MSE, the object's pixels weighted up: it
covers a few percent of the frame and is what the checker reads) plus a small KL.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLWan
from tqdm import tqdm

from chorus.data.shapes import all_specs, render
from chorus.models.wan import vae_compression as compression  # noqa: F401  (re-exported)
from chorus.train.data import ClipStream, clips_to_tensor
from chorus.train.loop import adamw, open_run, optimizer_step, resume, save_checkpoint, update_ema

VAE_FOLDER = "vae"


@dataclass
class VaeArch:
    """``AutoencoderKLWan`` arguments. Spatial factor 2**(len(dim_mult)-1), temporal 2**sum(temperal_downsample)."""

    base_dim: int = 16
    z_dim: int = 8
    dim_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 1
    temperal_downsample: tuple[bool, ...] = (True, True)

    def kwargs(self) -> dict:
        return dict(
            base_dim=self.base_dim,
            z_dim=self.z_dim,
            dim_mult=list(self.dim_mult),
            num_res_blocks=self.num_res_blocks,
            attn_scales=[],
            temperal_downsample=list(self.temperal_downsample),
            latents_mean=[0.0] * self.z_dim,
            latents_std=[1.0] * self.z_dim,
        )


@dataclass
class VaeConfig:
    arch: VaeArch = field(default_factory=VaeArch)
    seed: int = 0
    num_frames: int = 9  # 4k + 1, as Wan's causal temporal compression wants
    side: int = 64
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    kl_weight: float = 1e-4  # per element, against a per-element reconstruction loss
    fg_weight: float = 4.0  # extra weight on the object's pixels
    max_steps: int = 20000
    ema_decay: float = 0.999
    checkpoint_every: int = 100
    log_every: int = 10
    threads: int = 2
    device: str = "cpu"  # cuda on a GPU machine (scripts/gpu_train_v3.sh)

    @classmethod
    def from_file(cls, path: Path | None) -> VaeConfig:
        raw = json.loads(Path(path).read_text()) if path else {}
        arch = raw.pop("arch", {})
        arch = VaeArch(**{k: tuple(v) if isinstance(v, list) else v for k, v in arch.items()})
        return cls(arch=arch, **raw)

    def to_dict(self) -> dict:
        return asdict(self)


def foreground(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, F, H, W) mask of pixels unlike the frame's corner (the background: the path never reaches it)."""
    return ((x - x[..., :1, :1]).abs().amax(1, keepdim=True) > 0.05).float()


def vae_loss(vae: AutoencoderKLWan, x: torch.Tensor, cfg: VaeConfig, gen: torch.Generator):
    dist = vae.encode(x).latent_dist
    z = dist.mean + dist.std * torch.randn(dist.mean.shape, generator=gen).to(x.device)
    recon = vae.decode(z).sample
    w = 1 + cfg.fg_weight * foreground(x)
    rec = ((recon - x).abs() * w).mean() + (((recon - x) ** 2) * w).mean()
    kl = 0.5 * (dist.mean**2 + dist.var - 1 - dist.logvar).mean()
    return rec + cfg.kl_weight * kl, rec, kl, dist.mean.detach()


def card(cfg: VaeConfig, step: int) -> dict:
    return {"kind": "autoencoder", "revision": f"vae-step-{step}", "num_frames": cfg.num_frames, "side": cfg.side}


def train_vae(cfg: VaeConfig, out: Path, time_budget_s: float | None = None, max_steps: int | None = None) -> int:
    """Train (or resume) into ``out``; stop at ``cfg.max_steps``, ``max_steps`` more, or the time budget."""
    open_run(cfg, out)
    model = AutoencoderKLWan(**cfg.arch.kwargs()).to(cfg.device)  # before the optimizer sees it
    opt = adamw(model, cfg)
    rng = np.random.default_rng(cfg.seed)
    step, ema = resume(out, model, opt, rng, folder=VAE_FOLDER)
    ema.to(cfg.device)
    mean = torch.tensor(ema.config.latents_mean, dtype=torch.float64)
    var = torch.tensor(ema.config.latents_std, dtype=torch.float64) ** 2
    model.train()
    stream = ClipStream(rng, cfg.num_frames, cfg.side)
    gen = torch.Generator().manual_seed(cfg.seed + step)
    stop_at = min(cfg.max_steps, step + max_steps) if max_steps is not None else cfg.max_steps
    deadline = time.monotonic() + time_budget_s if time_budget_s else math.inf

    def save() -> None:
        ema.register_to_config(latents_mean=mean.tolist(), latents_std=var.sqrt().clamp_min(1e-3).tolist())
        save_checkpoint(out, card(cfg, step), step, model, ema, opt, rng, folder=VAE_FOLDER)

    log = (out / "loss.jsonl").open("a")
    bar = tqdm(total=stop_at, initial=step, desc="train-vae", unit="step")
    running = None
    while step < stop_at and time.monotonic() < deadline:
        x, _ = stream.batch(cfg.batch_size)
        x = x.to(cfg.device)
        loss, rec, kl, mu = vae_loss(model, x, cfg, gen)
        optimizer_step(model, opt, loss, cfg.lr * min(1.0, (step + 1) / 100))
        step += 1
        update_ema(ema, model, min(cfg.ema_decay, (1 + step) / (10 + step)))
        # Running per-channel statistics of the posterior means: the adapter's latent normalisation.
        m = mu.cpu().double().transpose(0, 1).flatten(1)
        k = 0.01 if step > 1 else 1.0
        mean = (1 - k) * mean + k * m.mean(1)
        var = (1 - k) * var + k * m.var(1)
        running = rec.item() if running is None else 0.95 * running + 0.05 * rec.item()
        bar.update(1)
        bar.set_postfix(rec=f"{running:.4f}", kl=f"{kl.item():.2f}")
        if step % cfg.log_every == 0:
            row = {"step": step, "rec": running, "kl": kl.item(), "time": time.time()}
            log.write(json.dumps(row) + "\n")
            log.flush()
        if step % cfg.checkpoint_every == 0:
            save()
    save()
    bar.close()
    log.close()
    return step


@torch.no_grad()
def reconstruction_scores(
    vae: AutoencoderKLWan, n_specs: int, num_frames: int, side: int, held_out: bool = False, seed: int = 0
) -> dict[str, float]:
    """The checker's accuracy on the autoencoder's reconstructions (posterior mean) of ``n_specs`` ground-truth
    clips, and their PSNR: whether the latent space keeps what the prompts talk about at all."""
    from chorus.eval.checker import read_clips, score

    rng = np.random.default_rng(seed)
    pool = all_specs(held_out=held_out)
    specs = [pool[i] for i in rng.choice(len(pool), size=n_specs, replace=n_specs > len(pool))]
    clips = np.stack([render(s, num_frames, side, rng) for s in specs])
    vae.eval()
    out, psnr = [], []
    for i in range(0, len(clips), 8):
        x = clips_to_tensor(clips[i : i + 8]).to(vae.device)
        y = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
        psnr.append((10 * torch.log10(4 / ((y - x) ** 2).flatten(1).mean(1))).tolist())
        out.append(((y + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).cpu().numpy())
    result = score(read_clips(np.concatenate(out)), specs)
    result["psnr"] = float(np.mean(sum(psnr, [])))
    return result


def main_eval(ckpt: Path, n_specs: int, held_out: bool = False, device: str = "cpu") -> dict[str, float]:
    vae = AutoencoderKLWan.from_pretrained(ckpt / VAE_FOLDER).to(device)
    info = json.loads((ckpt / "chorus_model.json").read_text())
    return reconstruction_scores(vae, n_specs, info["num_frames"], info["side"], held_out=held_out)
