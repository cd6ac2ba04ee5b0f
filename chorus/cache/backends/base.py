"""The cache backend protocol: what a cache session needs from wherever entries are kept.

Modelled on SGLang's ``BasePrefixCache``: a handful of operations, the policy decisions (plans, capture,
failure handling) stay in the session. Torch-free.
"""

from __future__ import annotations

from collections.abc import Collection
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from chorus.namespace import Namespace

if TYPE_CHECKING:
    from chorus.engine.capture import CapturedRun


@dataclass(frozen=True)
class Found:
    """The nearest entry a lookup found, as the session reports and reuses it."""

    entry_id: str
    similarity: float  # cosine similarity of the two prompt embeddings
    source_job_id: str | None  # the job whose run the entry holds (None: not from a job)
    path: str | None = None  # how the index found it ("exact", "hnsw@100", ...), for metrics
    local: bool = False  # its tensors are already in this process: the fetch costs nothing
    video_key: str | None = None  # the video its run delivered, for an exact repeat (None: not kept)
    prompt: str | None = None  # its run's prompt: whether a plan can read it is known before a fetch
    ref: Any = field(default=None, compare=False, repr=False)  # the backend's own handle on the entry


class CacheBackend(Protocol):
    def domains(self, tenants: Collection[str]) -> dict[str, str]:
        """Each tenant's cache domain: its own, or the shared pool it opted in to."""
        ...

    def nearest(self, embedding: np.ndarray, namespace: Namespace, domain: str, k: int) -> list[Found]:
        """The ``k`` nearest live entries of the same namespace and domain, nearest first (fewer, or none,
        where the partition holds fewer)."""
        ...

    def lookup_exact(self, fingerprint: str, domain: str) -> Found | None:
        """The newest live entry of the domain whose request had this fingerprint (chorus.fingerprint):
        an exact repeat, found by key, never by prompt similarity. Its similarity is reported as 1."""
        ...

    def copy_video(self, found: Found, key: str) -> int:
        """Copy the entry's video to ``key`` (a server-side copy in the store); returns its bytes.
        ``chorus.storage.ObjectNotFound`` if the video is gone."""
        ...

    def lookup_source(
        self, embedding: np.ndarray, source_job_id: str, namespace: Namespace, domain: str
    ) -> Found | None:
        """The live entry a given job left in the namespace and domain (a remix), or None if it is gone."""
        ...

    def fetch(self, found: Found) -> Future[CapturedRun]:
        """Start loading the entry's tensors; the future raises EntryUnavailable if they are gone."""
        ...

    def record_hit(self, found: Found, steps_saved: float) -> None:
        """Count a delivered reuse of the entry (eviction weighs it)."""
        ...

    def admit(
        self,
        run: CapturedRun,
        embedding: np.ndarray,
        namespace: Namespace,
        domain: str,
        source_job_id: str | None,
        fingerprint: str | None = None,
        video_key: str | None = None,
    ) -> None:
        """Store a delivered full run as a new entry, keyed also by its request's fingerprint, with the key
        of the video it delivered."""
        ...

    def enforce(self, domain: str) -> None:
        """Expire and evict the domain's entries until it fits its byte budget."""
        ...
