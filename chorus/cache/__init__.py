"""The inter-request cache stores: entries, their index and their budget. What to reuse, and how, is
decided above it (``chorus.reuse``); the mechanism is here, the policy there.

Modules, one job each:
- entries: the entry codec: a captured run's tensor names, the stored format, an entry's size
- layout: where an entry's objects live in the store (keys); torch-free
- index: one Postgres row per entry, nearest-prompt lookup with pgvector; torch-free
- eviction: each domain under its byte budget and TTL (LCBFU); torch-free
- local: the worker-local LRU of fetched entries and background fetches
- embedder: prompt embeddings, the key a lookup compares
- backends: one protocol (``base``), the service's (``postgres``) and an in-process one (``memory``)
- cli: ``chorus cache`` maintenance

Modules are imported directly (``from chorus.cache.index import CacheIndex``) so that the torch-free
parts stay importable without torch. Namespaces and domains are shared nouns: ``chorus.namespace``.
"""
