"""Training configuration: a dataclass, read from a JSON file, every field optional."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class ArchConfig:
    """WanTransformer3DModel arguments for the pixel-space model."""

    patch_size: tuple[int, int, int] = (2, 4, 4)
    num_attention_heads: int = 4
    attention_head_dim: int = 32
    ffn_dim: int = 512
    num_layers: int = 4
    freq_dim: int = 64
    text_dim: int = 384
    rope_max_seq_len: int = 64
    channels: int = 3  # 3 in pixel space; the autoencoder's z_dim in its latent space

    def wan_kwargs(self) -> dict:
        kwargs = asdict(self)
        channels = kwargs.pop("channels")
        return dict(
            kwargs, in_channels=channels, out_channels=channels, cross_attn_norm=True, qk_norm="rms_norm_across_heads"
        )


@dataclass
class TrainConfig:
    model_id: str = "chorus-shapes"
    seed: int = 0
    arch: ArchConfig = field(default_factory=ArchConfig)
    num_frames: int = 8
    side: int = 32
    batch_size: int = 24
    lr: float = 1e-3
    warmup_steps: int = 200
    decay_start_frac: float = 0.85  # constant LR until this fraction of max_steps, then linear to 10%
    weight_decay: float = 0.01
    max_steps: int = 20000
    ema_decay: float = 0.999
    uncond_prob: float = 0.1  # caption dropped -> "" so classifier-free guidance works
    flow_shift: float = 2.0  # sampling sigma shift, written to the model card
    checkpoint_every: int = 250
    log_every: int = 25
    threads: int = 2
    device: str = "cpu"  # cuda on a GPU machine (scripts/gpu_train_v3.sh)
    vae: str | None = None  # a folder holding vae/ (a ``chorus train-vae`` checkpoint): train in its latent space
    latent_pool: int = 0  # with ``vae``: replay this many encoded clips (chorus.train.data.LatentPool); 0: none
    fresh_per_step: int = 6  # with ``latent_pool``: clips encoded per step

    @classmethod
    def from_file(cls, path: Path | None) -> TrainConfig:
        raw = json.loads(Path(path).read_text()) if path else {}
        arch = ArchConfig(**{**raw.pop("arch", {})})
        arch.patch_size = tuple(arch.patch_size)
        return cls(arch=arch, **raw)

    def to_dict(self) -> dict:
        return asdict(self)
