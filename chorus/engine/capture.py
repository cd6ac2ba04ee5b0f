"""Capture on a full-compute run: what later requests reuse.

Three things are recorded: the latent after each denoising step; for the steps a Stage 2 may run, every
block's self-attention keys and values (both CFG passes, fp16, optionally pooled: the context a Stage-2
region attends to, see chorus.engine.context); and the cross-attention maps of the prompt tokens (video
tokens x text tokens, softmax probabilities averaged over heads, conditional rows only, averaged over
the chosen layers, optionally average-pooled on the token grid, stored as fp16). The maps are recorded
by a hook on each chosen ``attn2`` module (chorus.engine.attention_hooks): it leaves the forward's output
untouched (a captured run is bit-identical to an uncaptured one) and recomputes the query/key products of
the rows it records.

``CapturedRun`` is the payload of a cache entry; the entry codec (chorus.cache.entries) names its
tensors and writes them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from chorus.engine.attention_hooks import AttentionCall, AttentionHook, hook_attention, unhook_attention

Grid = tuple[int, int, int]  # a (t, h, w) token grid


@dataclass(frozen=True)
class CaptureConfig:
    latent_steps: tuple[int, ...] | None = None  # store the latent after these many steps (1..S); None: all
    map_steps: tuple[int, ...] | None = None  # 0-based steps whose cross-attention is recorded; None: all
    map_layers: tuple[int, ...] | None = None  # block indices recorded (their maps are averaged); None: all
    map_stride: Grid = (1, 2, 2)  # average-pool the (t, h, w) token grid by this before storing (2x2 patches)
    # The block whose cross-attention queries (pooled by preview_stride) are stored at the first map step,
    # so a target's own maps can be read off them (chorus.reuse.preview); None: the middle recorded block.
    preview_layer: int | None = None
    preview_stride: Grid | None = None  # None: the map stride; () stores no preview
    context_steps: tuple[int, ...] | None = None  # 0-based steps whose self-attention keys/values are stored
    context_stride: Grid = (1, 1, 1)  # average-pool those keys/values over (t, h, w) cells of this size
    latent_dtype: torch.dtype = torch.float16  # latents and context are stored in this

    def stores_latent(self, steps_done: int) -> bool:
        return self.latent_steps is None or steps_done in self.latent_steps

    def records_step(self, step: int) -> bool:
        return self.map_steps is None or step in self.map_steps

    def records_context(self, step: int) -> bool:
        return self.context_steps is None or step in self.context_steps

    def latents_only(self) -> CaptureConfig:
        """The same capture without attention maps or context."""
        return replace(self, map_steps=(), context_steps=())


@dataclass
class CapturedRun:
    """One full-compute video's reusable trajectory."""

    prompt: str
    negative_prompt: str
    seed: int
    num_steps: int
    guidance_scale: float
    token_ids: list[int]  # the prompt's tokenizer ids, unpadded
    token_grid: Grid  # video token grid (t, h, w) of the transformer
    map_grid: Grid  # grid of the stored maps (token_grid pooled by the capture's map_stride)
    latents: dict[int, torch.Tensor] = field(default_factory=dict)  # steps done (1..S) -> latent (C, F, H, W)
    attn_maps: dict[int, torch.Tensor] = field(default_factory=dict)  # 0-based step -> (map tokens, text tokens)
    # 0-based step -> (passes, layers, 2, cells, inner): self-attention keys and values, pooled by context_stride
    context: dict[int, torch.Tensor] = field(default_factory=dict)
    context_stride: Grid = (1, 1, 1)
    previews: dict[int, torch.Tensor] = field(default_factory=dict)  # 0-based step -> (cells, inner) queries
    preview_layer: int | None = None  # the block the previews' queries come from
    preview_grid: Grid | None = None  # the grid of the previews' cells

    @property
    def nbytes(self) -> int:
        tensors = [*self.latents.values(), *self.attn_maps.values(), *self.context.values(), *self.previews.values()]
        return sum(t.numel() * t.element_size() for t in tensors)

    def mean_map(self) -> torch.Tensor | None:
        """The stored maps averaged over steps, float32 (map tokens, text tokens); None if none stored."""
        if not self.attn_maps:
            return None
        return torch.stack([m.float() for m in self.attn_maps.values()]).mean(0)


class CaptureState:
    """Maps and latents recorded so far, per request key. The denoise loop calls ``begin_forward``
    before a transformer call to say which step it is and whose conditional rows to record."""

    def __init__(self, config: CaptureConfig, num_layers: int) -> None:
        self.config = config
        self.layers = list(range(num_layers)) if config.map_layers is None else list(config.map_layers)
        preview = config.preview_layer if config.preview_layer is not None else self.layers[len(self.layers) // 2]
        # The block whose queries are stored for previews; None: no preview
        self.preview_layer = preview if preview in self.layers and config.preview_stride != () else None
        self.preview_step = min(config.map_steps, default=None) if config.map_steps is not None else 0
        self.reset()

    def reset(self) -> None:
        self.step: int | None = None
        self.rows: list[Hashable | None] = []
        self.latents: dict[Hashable, dict[int, torch.Tensor]] = defaultdict(dict)
        self._map_sums: dict[Hashable, dict[int, torch.Tensor]] = defaultdict(dict)
        self._map_counts: dict[Hashable, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self._previews: dict[Hashable, dict[int, torch.Tensor]] = defaultdict(dict)

    def begin_forward(self, step: int, rows: Sequence[Hashable | None]) -> None:
        """The next forwards are step ``step``; conditional row i belongs to ``rows[i]`` (None: not recorded)."""
        self.step = step
        self.rows = list(rows) if self.config.records_step(step) else []

    def end_forward(self) -> None:
        self.step, self.rows = None, []

    @property
    def recording(self) -> bool:
        return any(r is not None for r in self.rows)

    def add_maps(self, probs: torch.Tensor) -> None:
        """One layer's (cond rows, video tokens, text tokens) head-averaged probabilities."""
        for row, key in enumerate(self.rows):
            if key is None:
                continue
            sums = self._map_sums[key]
            sums[self.step] = sums.get(self.step, 0) + probs[row].float()
            self._map_counts[key][self.step] += 1

    @property
    def preview_stride(self) -> Grid:
        return self.config.map_stride if self.config.preview_stride is None else self.config.preview_stride

    def previewing(self, layer: int) -> bool:
        return self.recording and layer == self.preview_layer and self.step == self.preview_step

    def add_previews(self, queries: torch.Tensor) -> None:
        """The preview layer's (cond rows, video tokens, inner) normed cross-attention queries."""
        for row, key in enumerate(self.rows):
            if key is not None:
                self._previews[key][self.step] = queries[row].float()

    def add_latent(self, key: Hashable, steps_done: int, latent: torch.Tensor) -> None:
        if self.config.stores_latent(steps_done):
            self.latents[key][steps_done] = latent.detach().to("cpu", self.config.latent_dtype).clone()

    def maps(
        self, key: Hashable, token_grid: Grid, text_tokens: int | None = None
    ) -> tuple[dict[int, torch.Tensor], Grid]:
        """The key's stored maps (layer-averaged, pooled, fp16, on CPU) and their grid. ``text_tokens``: keep
        the prompt's own token columns only (the diff never points past them; UMT5 pads to 512)."""
        stride, out = self.config.map_stride, {}
        for step, total in sorted(self._map_sums[key].items()):
            out[step] = _pooled(total[:, :text_tokens] / self._map_counts[key][step], token_grid, stride)
        return out, pooled_grid(token_grid, stride)

    def previews(self, key: Hashable, token_grid: Grid) -> tuple[dict[int, torch.Tensor], Grid]:
        """The key's preview queries (pooled, fp16, on CPU) and their grid."""
        stride = self.preview_stride
        return {step: _pooled(q, token_grid, stride) for step, q in self._previews[key].items()}, pooled_grid(
            token_grid, stride
        )


def _pooled(tokens: torch.Tensor, token_grid: Grid, stride: Grid) -> torch.Tensor:
    """(N, D) on ``token_grid`` -> (cells, D) average-pooled by ``stride``, fp16 on CPU."""
    cube = tokens.T.reshape(1, -1, *token_grid)  # (1, D, t, h, w)
    if stride != (1, 1, 1):
        cube = F.avg_pool3d(cube, stride, stride, ceil_mode=True)
    return cube.flatten(2)[0].T.to("cpu", torch.float16).contiguous()


def pooled_grid(grid: Grid, stride: Grid) -> Grid:
    """The grid of ``grid`` average-pooled by ``stride`` (border cells partial)."""
    return tuple(-(-g // s) for g, s in zip(grid, stride))


def probs_from_queries(attn: torch.nn.Module, queries: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """Softmax attention probabilities of a Wan attn2 module averaged over heads, (B, N, L) float32, from
    its normed queries (B, N, inner): a target's cross-attention can be read off a source's stored queries.
    Heads are accumulated one at a time to bound memory at full video resolution."""
    query = queries.unflatten(2, (attn.heads, -1)).float()
    key = attn.norm_k(attn.to_k(text)).unflatten(2, (attn.heads, -1)).float()
    scale = query.shape[-1] ** -0.5
    total = torch.zeros(query.shape[0], query.shape[1], text.shape[1], device=query.device)
    for h in range(attn.heads):
        total += torch.softmax(torch.einsum("bnd,bld->bnl", query[:, :, h], key[:, :, h]) * scale, dim=-1)
    return total / attn.heads


class CaptureHook(AttentionHook):
    """Records the conditional rows' maps (and the preview block's queries); the output is the chain's own."""

    name = "chorus_capture"

    def attend(self, attn: torch.nn.Module, call: AttentionCall) -> torch.Tensor:
        if self.state.recording:
            cond = len(self.state.rows)  # rows [0, cond) are the conditional pass, then unconditional ones
            if not cond <= call.hidden.shape[0] <= 2 * cond:
                raise ValueError(f"capture expects {cond} to {2 * cond} rows, got {call.hidden.shape[0]}")
            queries = attn.norm_q(attn.to_q(call.hidden[:cond]))
            self.state.add_maps(probs_from_queries(attn, queries, call.text[:cond]))
            if self.state.previewing(self.layer):
                self.state.add_previews(queries)
        return self.pass_on(call)


def apply_capture(transformer: torch.nn.Module, config: CaptureConfig) -> CaptureState:
    """Install map capture on the configured cross-attention layers; returns the state it records into."""
    state = CaptureState(config, len(transformer.blocks))
    return hook_attention(transformer, CaptureHook, state, state.layers)


def remove_capture(transformer: torch.nn.Module) -> None:
    unhook_attention(transformer, CaptureHook)
