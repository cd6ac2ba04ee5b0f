"""Object store for tensors and videos: S3 (boto3) or a local folder, chosen by URL."""

from chorus.storage.base import ObjectNotFound, ObjectStore, StoreError, open_store

__all__ = ["ObjectNotFound", "ObjectStore", "StoreError", "open_store"]
