"""The inter-request cache: prompt embeddings, namespaces and domains, entries in the
object store, the pgvector index, eviction and the worker-local LRU.

Modules are imported directly (``from chorus.cache.index import CacheIndex``) so that
the torch-free parts (namespace, index, eviction) stay importable without torch.
"""
