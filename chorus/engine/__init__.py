"""The denoising engine: plain flow-matching sampling and Chorus' three-stage cache reuse.

Modules, one job each:
- denoise: plain batched sampling with CFG (``generate``), shared pieces (scheduler, noise, guidance, stats)
- capture: record a full run's latents and cross-attention maps (``CapturedRun``, the cache payload)
- prompt_diff: which words and text tokens differ between a cached prompt and a new one
- region: the video tokens an edit must recompute, from the source's attention maps
- plan: the reuse policy and plan (Stage 1 / Stage 2 / Stage 3 step counts)
- prepare: from a lookup match to a plan and its source (diff + region + policy)
- subset_forward: the transformer on a subset of video tokens at their true positions
- tgaa: token-guided attention amplification processor
- staged: the three-stage denoise loop (``generate_with_reuse``)
"""
