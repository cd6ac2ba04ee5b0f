"""Cache entries as safetensors objects in the store, under deterministic keys.

An entry is the payload of a full-compute run (``chorus.engine.capture.CapturedRun``):
the latent after each stored step and the prompt tokens' cross-attention maps, in one
safetensors object whose header also carries the run's metadata, under
``cache/{domain}/{namespace}/{entry_id}/``. Which steps and maps a run holds, their
pooling and dtype, is the capture's config (``CaptureConfig``; ``chorus.cache.entry_size``
sizes it for real models); the entry's byte size is the size of what is actually written.
Entries are written to and read from a temporary file and streamed to and from the store,
so no process holds a whole entry as one bytes object beside its tensors. The index row
(``index.py``) holds prompt, token ids and embedding.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from chorus.cache.layout import EntryUnavailable, StoredEntry, entry_prefix, object_key
from chorus.engine.capture import CapturedRun
from chorus.storage import ObjectStore, StoreError

FORMAT = "chorus-cache/1"


def save_run(run: CapturedRun, path: Path) -> None:
    tensors = {name: t.detach().cpu().contiguous() for name, t in run.tensors().items()}
    save_file(tensors, str(path), metadata={"format": FORMAT, "run": json.dumps(run.metadata())})


def load_run(path: Path) -> CapturedRun:
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"unknown cache entry format {meta.get('format')!r}")
    return CapturedRun.from_parts(json.loads(meta["run"]), load_file(str(path)))


def write_entry(store: ObjectStore, domain: str, namespace: str, run: CapturedRun) -> StoredEntry:
    """Store ``run`` under a new entry id; admit the result to the index afterwards."""
    if not run.latents:
        raise ValueError("a captured run without latents cannot be reused")
    entry_id = uuid.uuid4()
    prefix = entry_prefix(domain, namespace, entry_id)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "entry.safetensors"
        save_run(run, path)
        store.put_file(object_key(prefix), path)
        nbytes = path.stat().st_size
    return StoredEntry(entry_id, prefix, nbytes, sorted(run.latents))


def read_entry(store: ObjectStore, prefix: str) -> CapturedRun:
    """Load an entry's tensors; any failure (gone, store down, corrupt) becomes EntryUnavailable."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "entry.safetensors"
            store.get_file(object_key(prefix), path)
            return load_run(path)
    except (StoreError, SafetensorError, KeyError, ValueError, OSError) as exc:
        raise EntryUnavailable(f"{prefix}: {exc}") from exc
