"""Where a cache entry's objects live in the store. Torch-free, so eviction is too."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from chorus.storage import ObjectStore

ENTRY_OBJECT = "entry.safetensors"  # tensors + run metadata; the prefix leaves room for more objects


class EntryUnavailable(Exception):
    """The entry's tensors could not be read (evicted meanwhile, store down, corrupt).

    The worker catches it and computes the request in full.
    """


@dataclass(frozen=True)
class StoredEntry:
    """An entry whose objects are written: the only thing the index admits."""

    id: uuid.UUID
    prefix: str
    nbytes: int  # the stored objects' sizes summed, headers included
    steps_stored: list[int]  # latent steps stored


def entry_prefix(domain: str, namespace: str, entry_id: uuid.UUID) -> str:
    return f"cache/{domain}/{namespace}/{entry_id}"


def object_key(prefix: str) -> str:
    return f"{prefix}/{ENTRY_OBJECT}"


def delete_objects(store: ObjectStore, prefix: str) -> None:
    store.delete(object_key(prefix))
