"""Objects of a local-folder store over HTTP: how the embedded mode serves videos (S3 presigns instead)."""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.context import Context
from api.errors import error_responses
from chorus.jobs.errors import NotFound
from chorus.storage import StoreError
from chorus.storage.local import LocalStore

router = APIRouter(tags=["files"])


@router.get(
    "/v1/files/{key:path}", response_class=FileResponse, responses=error_responses(404), summary="A stored file"
)
async def read_file(key: str, context: Context) -> FileResponse:
    """Only when the store is a local folder. Keys are unguessable (they contain job ids), like presigned URLs."""
    store = context.store
    if not isinstance(store, LocalStore):
        raise NotFound("not_found", "files are served by the object store (use the job's video_url)")
    try:
        path = store.path(key)
    except StoreError:
        path = None
    if path is None or not path.is_file():
        raise NotFound("file_not_found", f"no file {key}")
    return FileResponse(path, media_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream")
