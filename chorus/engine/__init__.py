"""The denoising engine: flow-matching sampling and the three-stage loop that runs a reuse plan. It
knows nothing of caches, plans' reasons or jobs (it imports no ``chorus.reuse``, ``chorus.cache``,
``chorus.jobs`` or ``worker``).

Modules, one job each:
- denoise: what every denoise shares: the request, stats, guidance, cancel, intra-cache contexts
- sampling: each request's trajectory stepped by the model's own scheduler; sampler grids (``sigma_grid``)
- stages: what the loop reads of a plan (``StagePlan``) and Stage 2's region (``RegionMask``)
- staged: the one denoise loop: by plans (``generate_with_reuse``), or plain with none (``generate``)
- subset_forward: the transformer on a subset of video tokens at their true positions
- attention_hooks: the one way into Wan's attention: diffusers hooks (``AttentionHook``), registered by name
- context: Stage 2's region attending to the source's keys and values (a self-attention hook)
- tgaa: token-guided attention amplification (a cross-attention hook)
- capture: record a full run's latents, maps and context (``CapturedRun``, a cache entry's payload)
"""
