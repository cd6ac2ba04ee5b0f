"""Signed, expiring links to a local-folder store's videos: what S3's presigned URLs are for the S3 store.

A link carries ``expires`` (Unix seconds) and ``signature``: an HMAC-SHA256, keyed by the deployment's
``CHORUS_LINK_SECRET``, over the object key and that expiry. The API's ``/v1/files`` route serves a
link only while it has not expired, only with its own signature, and only for videos: a cache entry's
tensors are never served, whatever key a caller knows.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from chorus.storage.base import ObjectNotFound, ObjectStore

VIDEOS_PREFIX = "videos/"  # every job video's key starts with it (``chorus.video.video_key``)
# A video's previews, stored beside it: variant -> (key suffix, content type), as OpenAI's video API serves them.
PREVIEWS = {"thumbnail": (".thumbnail.webp", "image/webp"), "spritesheet": (".spritesheet.jpg", "image/jpeg")}


def preview_key(video_key: str, variant: str) -> str:
    return video_key.removesuffix(".mp4") + PREVIEWS[variant][0]


def copy_video(store: ObjectStore, source: str, key: str) -> int:
    """Copy a stored video and its previews under another key (server-side on S3): an exact repeat's own
    objects, so deleting either job leaves the other's. Returns the video's size; ObjectNotFound if the
    video is gone (previews stored before they existed are skipped)."""
    for variant in PREVIEWS:
        try:
            store.copy(preview_key(source, variant), preview_key(key, variant))
        except ObjectNotFound:
            pass
    return store.copy(source, key)


class LinkRefused(Exception):
    """Why a link is not served: ``code`` is the API's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def signature(secret: str, key: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()


def check_link(secret: str, key: str, expires: int | None, sig: str | None, now: float | None = None) -> None:
    """LinkRefused unless the link is a video's, signed with ``secret`` and not yet expired."""
    if not key.startswith(VIDEOS_PREFIX):
        raise LinkRefused("file_not_found", "only job videos are served")
    if expires is None or not sig:
        raise LinkRefused("link_unsigned", "the link has no signature (use the job's video_url)")
    if not hmac.compare_digest(sig, signature(secret, key, expires)):
        raise LinkRefused("link_signature_invalid", "the link's signature does not match")
    if (time.time() if now is None else now) >= expires:
        raise LinkRefused("link_expired", "the link has expired (get the job again for a fresh video_url)")
