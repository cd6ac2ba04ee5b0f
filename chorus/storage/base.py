"""The object store interface and its errors."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class StoreError(Exception):
    """The store could not be reached or refused the operation."""


class ObjectNotFound(StoreError):
    pass


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...

    def get(self, key: str) -> bytes: ...

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        """Upload the file at ``path``, streamed (multipart on S3): large objects never sit in memory whole."""
        ...

    def get_file(self, key: str, path: Path) -> None:
        """Download the object into the file at ``path``, streamed."""
        ...

    def copy(self, source: str, key: str) -> int:
        """Copy an object within the store (server-side on S3: no byte passes through this process);
        returns its size. ObjectNotFound if ``source`` is gone."""
        ...

    def delete(self, key: str) -> None:
        """Idempotent: deleting a missing key is not an error."""
        ...

    def exists(self, key: str) -> bool: ...

    def url(self, key: str, expires_s: int) -> str:
        """A URL a client can GET the object from until it expires."""
        ...

    def ping(self) -> None:
        """Raise StoreError if the store is unreachable."""
        ...
