"""Where cache entries live, behind one small protocol (``base.CacheBackend``), implementations beside it.

- postgres: the service's backend: pgvector index in Postgres, tensors in the object store, a
  worker-local LRU and background fetches, LCBFU eviction per domain budget.
- memory: everything in one process (``chorus bench``, notebooks, unit tests): the same matching,
  admission and eviction rules, logical time.

``chorus.reuse.session.CacheSession`` drives either one the same way.
"""
