"""A local-folder store's videos over HTTP: how the embedded mode serves them (S3 presigns instead)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from api.context import Context
from api.errors import ApiError, error_responses
from chorus.errors import NotFound
from chorus.storage import StoreError
from chorus.storage.links import LinkRefused
from chorus.storage.local import LocalStore

router = APIRouter(tags=["files"])


@router.get(
    "/v1/files/{key:path}",
    response_class=FileResponse,
    responses={200: {"content": {"video/mp4": {}}}, **error_responses(403, 404)},
    summary="A job's video (local-folder store)",
)
async def read_file(
    key: str,
    context: Context,
    expires: Annotated[int | None, Query(description="Unix time the link expires at")] = None,
    signature: Annotated[str | None, Query(description="HMAC-SHA256 of key and expiry (CHORUS_LINK_SECRET)")] = None,
) -> FileResponse:
    """Only when the store is a local folder, only videos, and only through the signed, expiring link in the
    job's `video_url` (like a presigned S3 URL)."""
    store = context.store
    if not isinstance(store, LocalStore):
        raise NotFound("not_found", "files are served by the object store (use the job's video_url)")
    try:
        path = store.linked_path(key, expires, signature)
    except LinkRefused as exc:
        if exc.code == "file_not_found":
            raise NotFound(exc.code, exc.message) from None
        raise ApiError(403, exc.code, exc.message) from None
    except StoreError:
        path = None
    if path is None or not path.is_file():
        raise NotFound("file_not_found", f"no file {key}")
    return FileResponse(path, media_type="video/mp4")
