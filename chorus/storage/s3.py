"""S3-compatible store via boto3 (AWS, MinIO, R2, moto)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chorus.storage.base import ObjectNotFound, StoreError


@contextmanager
def _reading(key: str) -> Iterator[None]:
    """A read's errors as the store's: a missing object is ObjectNotFound, anything else StoreError."""
    try:
        yield
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise ObjectNotFound(key) from exc
        raise StoreError(f"get {key}: {exc}") from exc
    except BotoCoreError as exc:
        raise StoreError(f"get {key}: {exc}") from exc


class S3Store:
    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None, region: str = "us-east-1"):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        # botocore retries transient errors (5xx, throttling, timeouts) with backoff.
        config = Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=5, read_timeout=30)
        self.client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"put {key}: {exc}") from exc

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        try:  # boto3's managed transfer: multipart above 8 MB, read from the file in chunks
            self.client.upload_file(str(path), self.bucket, self._key(key), ExtraArgs={"ContentType": content_type})
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            raise StoreError(f"put {key}: {exc}") from exc

    def get_file(self, key: str, path: Path) -> None:
        with _reading(key):
            self.client.download_file(self.bucket, self._key(key), str(path))

    def get(self, key: str) -> bytes:
        with _reading(key):
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def copy(self, source: str, key: str) -> int:
        with _reading(source):
            self.client.copy_object(
                Bucket=self.bucket, Key=self._key(key), CopySource={"Bucket": self.bucket, "Key": self._key(source)}
            )
            return self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"]

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"delete {key}: {exc}") from exc

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise StoreError(f"head {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"head {key}: {exc}") from exc

    def url(self, key: str, expires_s: int) -> str:
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=expires_s
        )

    def ping(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"bucket {self.bucket}: {exc}") from exc
