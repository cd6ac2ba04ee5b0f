"""The inter-request cache: prompt embeddings, namespaces and domains, the cache session, its backends
(pgvector index + object store, or in-memory), eviction and the worker-local LRU.

Everything that uses the cache goes through one object, the session (``session.py``)::

    cache = ReuseCache(PostgresBackend.from_settings(settings, store), MiniLMEmbedder(), config)
    session = cache.open(adapter, jobs)     # key, look up, fetch (overlapped), plan
    frames = session.denoise(on_step=...)   # the staged denoise, each job by its plan
    session.settle(delivered)               # record hits, admit misses, keep the budget

The worker drives it with ``backends.postgres``, ``chorus bench`` with ``backends.memory``.
Modules are imported directly (``from chorus.cache.index import CacheIndex``) so that the torch-free
parts (namespace, layout, index, eviction, backends.base) stay importable without torch.
"""
