"""A target prompt's own cross-attention maps, read off its source's run before the target runs.

The source stored one block's cross-attention queries (pooled like its maps) at the first step a Stage 2
may run. Keys from the target's own text against those queries give the maps the target would have had
on the source's video at that step: where its differing words (a new colour, a new direction) would
attend. Stage 2's region is the union of the source's region for its differing tokens and this one for
the target's, so an edit that moves or reshapes the object is recomputed where the target will put it too.
"""

from __future__ import annotations

import torch

from chorus.engine.capture import CapturedRun, probs_from_queries
from chorus.models.base import VideoModelAdapter


@torch.inference_mode()
def target_maps(adapter: VideoModelAdapter, run: CapturedRun, prompt: str) -> torch.Tensor | None:
    """(map tokens, text tokens) head-averaged cross-attention of ``prompt`` on the source's video at its
    preview step, float32; None when the run stored no preview."""
    if not run.previews or run.preview_layer is None:
        return None
    transformer = adapter.transformer
    states = adapter.encode_prompts([prompt]).states
    text = transformer.condition_embedder.text_embedder(states)
    queries = run.previews[min(run.previews)].to(adapter.device, text.dtype)[None]
    return probs_from_queries(transformer.blocks[run.preview_layer].attn2, queries, text)[0].cpu()
