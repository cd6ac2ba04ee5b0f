"""The cache entry codec: a captured run's tensor names, the stored format, and an entry's size.

An entry is the payload of a full-compute run (``chorus.engine.capture.CapturedRun``): the latent after
each stored step, the prompt tokens' cross-attention maps, Stage 2's context and the target preview's
queries, in one safetensors object whose header also carries the run's metadata, under
``cache/{domain}/{namespace}/{entry_id}/`` (``layout.py``). Which steps and maps a run holds, their
pooling and dtype, is the capture's config (``CaptureConfig``); ``entry_size`` and ``fit_stage2`` size it
for real models from shapes alone (no weights); the entry's stored byte size is the size of what is
actually written. Entries are written to and read from a temporary file and streamed to and from the
store, so no process holds a whole entry as one bytes object beside its tensors. The index row
(``index.py``) holds prompt, token ids and embedding.

Sizes: a plan reads few of a run's steps: a replay the final latent, a seed variant the latent after its
Stage 1, an edit the latents of its Stage-1 start and Stage-2 steps, and the region of an edit comes from
the maps averaged over the stored steps. ``ReusePolicy.capture_for`` stores exactly those (maps at two
Stage-2 steps), so an entry's size follows the policy, not the step count. Maps are averaged over heads
and layers and keep only the prompt's own token columns, so model size (1.3B vs 14B: layers and heads)
does not change an entry: the latent's shape (VAE channels and factors) and the token grid (patch,
pooling) do. Stage 2's material is the exception: the context (every block's keys and values of both CFG
passes at each step a Stage 2 may run) and one block's cross-attention queries (the target's preview)
grow with layers and width; ``fit_stage2`` pools them as finely as a budget allows.
"""

from __future__ import annotations

import json
import math
import tempfile
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from chorus.cache.layout import EntryUnavailable, StoredEntry, entry_prefix, object_key
from chorus.engine.capture import CaptureConfig, CapturedRun, Grid, pooled_grid
from chorus.storage import ObjectStore, StoreError

FORMAT = "chorus-cache/1"
FP16 = 2


def run_tensors(run: CapturedRun) -> dict[str, torch.Tensor]:
    """The run's tensors by stored name: ``{latent,attn,context,query}.{step}``."""
    out = {f"latent.{k}": v.contiguous() for k, v in run.latents.items()}
    out.update({f"attn.{k}": v.contiguous() for k, v in run.attn_maps.items()})
    out.update({f"context.{k}": v.contiguous() for k, v in run.context.items()})
    out.update({f"query.{k}": v.contiguous() for k, v in run.previews.items()})
    return out


def run_metadata(run: CapturedRun) -> dict[str, Any]:
    return {
        "prompt": run.prompt,
        "negative_prompt": run.negative_prompt,
        "seed": run.seed,
        "num_steps": run.num_steps,
        "guidance_scale": run.guidance_scale,
        "token_ids": list(run.token_ids),
        "token_grid": list(run.token_grid),
        "map_grid": list(run.map_grid),
        "latent_steps": sorted(run.latents),
        "map_steps": sorted(run.attn_maps),
        "context_steps": sorted(run.context),
        "context_stride": list(run.context_stride),
        "preview_layer": run.preview_layer,
        "preview_grid": list(run.preview_grid) if run.preview_grid else None,
        "nbytes": run.nbytes,
    }


def run_from_parts(metadata: dict[str, Any], tensors: dict[str, torch.Tensor]) -> CapturedRun:
    """The run that ``run_metadata`` and ``run_tensors`` split."""
    parts: dict[str, dict[int, torch.Tensor]] = {"latent": {}, "attn": {}, "context": {}, "query": {}}
    for name, tensor in tensors.items():
        kind, step = name.split(".")
        parts[kind][int(step)] = tensor
    return CapturedRun(
        prompt=metadata["prompt"],
        negative_prompt=metadata["negative_prompt"],
        seed=metadata["seed"],
        num_steps=metadata["num_steps"],
        guidance_scale=metadata["guidance_scale"],
        token_ids=list(metadata["token_ids"]),
        token_grid=tuple(metadata["token_grid"]),
        map_grid=tuple(metadata["map_grid"]),
        latents=parts["latent"],
        attn_maps=parts["attn"],
        context=parts["context"],
        context_stride=tuple(metadata.get("context_stride", (1, 1, 1))),
        previews=parts["query"],
        preview_layer=metadata.get("preview_layer"),
        preview_grid=tuple(metadata["preview_grid"]) if metadata.get("preview_grid") else None,
    )


def save_run(run: CapturedRun, path: Path) -> None:
    tensors = {name: t.detach().cpu().contiguous() for name, t in run_tensors(run).items()}
    save_file(tensors, str(path), metadata={"format": FORMAT, "run": json.dumps(run_metadata(run))})


def load_run(path: Path) -> CapturedRun:
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"unknown cache entry format {meta.get('format')!r}")
    return run_from_parts(json.loads(meta["run"]), load_file(str(path)))


def write_entry(store: ObjectStore, domain: str, namespace: str, run: CapturedRun) -> StoredEntry:
    """Store ``run`` under a new entry id; admit the result to the index afterwards."""
    if not run.latents:
        raise ValueError("a captured run without latents cannot be reused")
    entry_id = uuid.uuid4()
    prefix = entry_prefix(domain, namespace, entry_id)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "entry.safetensors"
        save_run(run, path)
        store.put_file(object_key(prefix), path)
        nbytes = path.stat().st_size
    return StoredEntry(entry_id, prefix, nbytes, sorted(run.latents))


def read_entry(store: ObjectStore, prefix: str) -> CapturedRun:
    """Load an entry's tensors; any failure (gone, store down, corrupt) becomes EntryUnavailable."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "entry.safetensors"
            store.get_file(object_key(prefix), path)
            return load_run(path)
    except (StoreError, SafetensorError, KeyError, ValueError, OSError) as exc:
        raise EntryUnavailable(f"{prefix}: {exc}") from exc


@dataclass(frozen=True)
class LatentSpace:
    """What fixes an entry's tensor shapes: the VAE's channels and factors, the transformer's patch."""

    channels: int = 16
    temporal: int = 4
    spatial: int = 8
    patch: tuple[int, int, int] = (1, 2, 2)
    layers: int = 30  # transformer blocks and their attention width: what Stage 2's context scales with
    width: int = 1536

    def latent(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        return self.channels, (frames - 1) // self.temporal + 1, height // self.spatial, width // self.spatial

    def token_grid(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        _, f, h, w = self.latent(frames, height, width)
        return f // self.patch[0], h // self.patch[1], w // self.patch[2]


# Wan2.1's diffusers configs: both sizes share the VAE (z_dim 16, 4x8x8) and the (1, 2, 2) patch; they
# differ in layers (30, 40), heads (12, 40) and width (1536, 5120), which pooled maps do not keep.
WAN21 = {"Wan2.1-T2V-1.3B": LatentSpace(), "Wan2.1-T2V-14B": LatentSpace(layers=40, width=5120)}
CONTEXT_STRIDES: tuple[Grid, ...] = ((1, 1, 1), (1, 2, 2), (1, 4, 4), (2, 8, 8))  # finest first


@dataclass(frozen=True)
class EntrySize:
    latent_bytes: int
    map_bytes: int
    stage2_bytes: int = 0  # the context and the target's preview queries

    @property
    def total(self) -> int:
        return self.latent_bytes + self.map_bytes + self.stage2_bytes


def context_bytes(layers: int, width: int, grid: Grid, config: CaptureConfig, passes: int = 2) -> int:
    """Bytes of the keys and values ``config`` stores for Stage 2 of a ``layers``-block transformer of
    attention ``width`` on a ``grid`` of tokens."""
    cells = math.prod(pooled_grid(grid, config.context_stride))
    return len(config.context_steps or ()) * passes * layers * 2 * cells * width * config.latent_dtype.itemsize


def preview_bytes(width: int, grid: Grid, config: CaptureConfig) -> int:
    """Bytes of the one block's queries ``config`` stores for the target's preview maps."""
    if not config.map_steps or config.preview_stride == ():
        return 0
    stride = config.map_stride if config.preview_stride is None else config.preview_stride
    return math.prod(pooled_grid(grid, stride)) * width * FP16


def fit_stage2(
    layers: int, width: int, grid: Grid, config: CaptureConfig, budget: float, passes: int = 2
) -> CaptureConfig:
    """``config`` with Stage 2's material pooled to fit ``budget`` bytes: the target's preview first (the
    map stride, else coarser in space, else none), then the context in what is left (the finest of
    ``CONTEXT_STRIDES`` that fits, else none: Stage 2 then runs context-free)."""
    h, w = config.map_stride[1:]
    for stride in [(config.map_stride[0], h * k, w * k) for k in (1, 2, 4)] + [()]:
        config = replace(config, preview_stride=stride)
        if preview_bytes(width, grid, config) <= budget:
            break
    left = budget - preview_bytes(width, grid, config)
    for stride in CONTEXT_STRIDES:
        if context_bytes(layers, width, grid, replace(config, context_stride=stride), passes) <= left:
            return replace(config, context_stride=stride)
    return replace(config, context_steps=())


def entry_size(
    space: LatentSpace, frames: int, height: int, width: int, config: CaptureConfig, text_tokens: int, passes: int = 2
) -> EntrySize:
    """Tensor bytes of one entry (the safetensors header adds about a kilobyte); ``passes``: 2 with guidance."""
    latent = math.prod(space.latent(frames, height, width)) * config.latent_dtype.itemsize
    grid = space.token_grid(frames, height, width)
    pooled = math.prod(pooled_grid(grid, config.map_stride))
    return EntrySize(
        len(config.latent_steps) * latent,
        len(config.map_steps) * pooled * text_tokens * FP16,
        context_bytes(space.layers, space.width, grid, config, passes) + preview_bytes(space.width, grid, config),
    )
