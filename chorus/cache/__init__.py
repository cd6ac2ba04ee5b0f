"""The inter-request cache: prompt embeddings, namespaces and domains, entries in the
object store, the pgvector index, eviction and the worker-local LRU.

A worker uses it like this (one job; batch the embedding and lookups per batch)::

    ns = Namespace.for_request(card, steps=..., height=..., width=..., frames=...,
                               guidance_scale=..., embedder=embedder.name)
    domain = cache_domain(tenant.id, tenant.cache_shared)
    embedding = embedder.embed([prompt])[0]
    match = index.lookup(embedding, namespace=ns.key, domain=domain)    # Match | None
    future = fetcher.prefetch(match.entry) if match else None           # overlaps with ...
    encoding = adapter.encode_prompts([prompt])                         # ... prompt encoding
    run = future.result() if future else None                           # EntryUnavailable -> full compute
    ... plan with match.similarity and run, denoise ...
    if the plan was a hit: index.record_hit(match.entry.id, steps_saved)
    if it ran in full:     stored = write_entry(store, domain, ns.key, captured)
                           index.admit(store, stored, namespace=ns, domain=domain, embedding=embedding, ...)
                           evictor.enforce(domain)

Modules are imported directly (``from chorus.cache.index import CacheIndex``) so that
the torch-free parts (namespace, layout, index, eviction) stay importable without torch.
"""
