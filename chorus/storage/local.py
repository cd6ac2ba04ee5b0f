"""A local folder as the object store (embedded mode, development)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlencode

from chorus.storage.base import ObjectNotFound, StoreError
from chorus.storage.links import VIDEOS_PREFIX, LinkRefused, check_link, signature


class LocalStore:
    def __init__(self, root: str | Path, public_base_url: str = "http://127.0.0.1:8000", link_secret: str = ""):
        self.root = Path(root).resolve()
        self.public_base_url = public_base_url.rstrip("/")
        self.link_secret = link_secret  # empty: links cannot be made, and none is served

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise StoreError(f"key escapes the store: {key!r}")
        return path

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a reader never sees half an object.
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
            tmp.write(data)
        os.replace(tmp.name, path)

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
            tmp.close()
            shutil.copyfile(path, tmp.name)
        os.replace(tmp.name, target)

    def copy(self, source: str, key: str) -> int:
        try:
            self.put_file(key, self.path(source))
        except FileNotFoundError as exc:
            raise ObjectNotFound(source) from exc
        return self.path(key).stat().st_size

    def get_file(self, key: str, path: Path) -> None:
        try:
            shutil.copyfile(self.path(key), path)
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def url(self, key: str, expires_s: int) -> str:
        """A link to the API's /v1/files route, signed and expiring like a presigned S3 URL."""
        if not self.link_secret:
            raise StoreError("CHORUS_LINK_SECRET is not set: a local-folder store cannot sign video links")
        expires = int(time.time()) + expires_s
        query = urlencode({"expires": expires, "signature": signature(self.link_secret, key, expires)})
        return f"{self.public_base_url}/v1/files/{quote(key)}?{query}"

    def linked_path(self, key: str, expires: int | None, sig: str | None) -> Path:
        """The file a link points at; LinkRefused unless it is a video's and the link is signed and current."""
        check_link(self.link_secret, key, expires, sig)
        path = self.path(key)
        if not path.is_relative_to(self.root / VIDEOS_PREFIX):  # "videos/../cache/…" is no video
            raise LinkRefused("file_not_found", "only job videos are served")
        return path

    def ping(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise StoreError(f"store folder {self.root} is not writable")
