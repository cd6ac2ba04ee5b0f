"""Object store for tensors and videos: S3 (boto3) or a local folder, chosen by URL.

- base: the ``ObjectStore`` protocol and its errors
- s3: S3 (and MinIO, R2) through boto3, streamed multipart
- local: a local folder, with signed links the API serves
- links: the signed download links of the local store
"""

from __future__ import annotations

from urllib.parse import urlparse

from chorus.config import Settings
from chorus.storage.base import ObjectNotFound, ObjectStore, StoreError

__all__ = ["ObjectNotFound", "ObjectStore", "StoreError", "open_store"]


def open_store(settings: Settings) -> ObjectStore:
    parsed = urlparse(settings.store_url)
    if parsed.scheme == "s3":
        from chorus.storage.s3 import S3Store

        return S3Store(
            bucket=parsed.netloc,
            prefix=parsed.path.lstrip("/"),
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
        )
    if parsed.scheme == "file":
        from chorus.storage.local import LocalStore

        return LocalStore(
            root=(parsed.netloc + parsed.path) or ".",
            public_base_url=settings.public_base_url,
            link_secret=settings.link_secret,
        )
    raise ValueError(f"unsupported store URL {settings.store_url!r} (use s3://bucket/prefix or file:///dir)")
