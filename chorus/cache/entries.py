"""Cache entries as safetensors objects in the store, under deterministic keys.

An entry is the payload of a full-compute run (``chorus.engine.capture.CapturedRun``):
the latent after each stored step and the prompt tokens' cross-attention maps, in one
safetensors object whose header also carries the run's metadata, under
``cache/{domain}/{namespace}/{entry_id}/``. Which steps and maps a run holds, their
pooling and dtype, is the capture's config (``CaptureConfig``); the entry's byte size is
the size of what is actually written. The index row (``index.py``) holds prompt, token
ids and embedding.
"""

from __future__ import annotations

import json
import uuid

from safetensors import SafetensorError
from safetensors.torch import load, save

from chorus.cache.layout import EntryUnavailable, StoredEntry, entry_prefix, object_key
from chorus.engine.capture import CapturedRun
from chorus.storage import ObjectStore, StoreError

FORMAT = "chorus-cache/1"


def encode(run: CapturedRun) -> bytes:
    tensors = {name: t.detach().cpu().contiguous() for name, t in run.tensors().items()}
    return save(tensors, metadata={"format": FORMAT, "run": json.dumps(run.metadata())})


def decode(data: bytes) -> CapturedRun:
    # safetensors layout: u64 little-endian header size, then the JSON header holding __metadata__.
    header_size = int.from_bytes(data[:8], "little")
    meta = json.loads(data[8 : 8 + header_size])["__metadata__"]
    if meta.get("format") != FORMAT:
        raise ValueError(f"unknown cache entry format {meta.get('format')!r}")
    return CapturedRun.from_parts(json.loads(meta["run"]), load(data))


def write_entry(store: ObjectStore, domain: str, namespace: str, run: CapturedRun) -> StoredEntry:
    """Store ``run`` under a new entry id; admit the result to the index afterwards."""
    if not run.latents:
        raise ValueError("a captured run without latents cannot be reused")
    entry_id = uuid.uuid4()
    prefix = entry_prefix(domain, namespace, entry_id)
    data = encode(run)
    store.put(object_key(prefix), data)
    return StoredEntry(entry_id, prefix, len(data), sorted(run.latents))


def read_entry(store: ObjectStore, prefix: str) -> CapturedRun:
    """Load an entry's tensors; any failure (gone, store down, corrupt) becomes EntryUnavailable."""
    try:
        return decode(store.get(object_key(prefix)))
    except (StoreError, SafetensorError, KeyError, ValueError) as exc:
        raise EntryUnavailable(f"{prefix}: {exc}") from exc
