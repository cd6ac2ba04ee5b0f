"""Reuse decides: which earlier run a request reuses, and how (the plan). The worker and the benchmark
reach reuse, and through it the engine, only through this package (``session``).

    cache = ReuseCache.for_service(settings, store)   # or ReuseCache(backend, embedder, config)
    session = cache.open(adapter, jobs)                # key, look up, fetch (overlapped), plan
    frames = session.denoise(on_step=...)              # the engine's staged denoise, each job by its plan
    session.settle(delivered)                          # record hits, admit misses, keep the budget

Modules, one question each:
- session: one batch's way through reuse (``ReuseCache``, ``CacheSession``, ``CacheJob``, ``ReuseConfig``)
- prepare: from a lookup's match to a plan and its source (diff + region + mask reading + kinds + policy)
- plan: where an edit's plan is decided (``ReusePolicy``, ``ReusePlan``), and what a miss must capture
- prompt_diff: which words and text tokens differ between a cached prompt and a new one
- edit_class: local or global by the edit's mask, which refines the kind's calibrated plan (Stage 2 on local only)
- edit_kind: what an edit's differing words change (appearance, identity, motion, scene, camera, layout),
  which picks its calibrated plan
- region: the video tokens an edit must recompute, from the source's attention maps
- preview: a target prompt's own attention maps, read off the source's stored queries
- calibration: a model's calibrated plans per edit kind and step count (``calibration.json``); torch-free

Modules are imported directly (``from chorus.reuse.session import ReuseCache``) so that the torch-free
ones (calibration) stay importable without torch.
"""
