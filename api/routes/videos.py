"""/v1/videos: OpenAI's video API over the same jobs as /v1/jobs (see ``chorus.jobs.videos``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.context import ApiKey, AppContext, Context
from api.errors import openai_error_responses
from chorus.db.models import Job
from chorus.errors import Conflict, InvalidInput, NotFound
from chorus.jobs.queries import delete_job, get_job, page_jobs
from chorus.jobs.quota import Admission
from chorus.jobs.submit import submit_job
from chorus.jobs.videos import (
    Video,
    VideoCreate,
    VideoDeleted,
    VideoList,
    VideoRemix,
    create_input,
    form_fields,
    remix_input,
    video_object,
)
from chorus.storage.links import PREVIEWS, preview_key
from chorus.vocab import JobStatus

router = APIRouter(prefix="/v1/videos", tags=["videos"])
_REF = "#/components/schemas/{model}"
MULTIPART = "multipart/form-data"


def _form_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The body's fields as the openai SDK sends them in a form: nested objects flattened to ``a[b]``."""
    schema = model.model_json_schema(ref_template=_REF)
    properties: dict[str, Any] = {}
    for name, field in schema["properties"].items():
        if "$ref" in field:
            nested = schema["$defs"][field["$ref"].rsplit("/", 1)[1]]
            properties |= {f"{name}[{sub}]": value for sub, value in nested["properties"].items()}
        else:
            properties[name] = field
    return {"type": "object", "properties": properties, "required": schema.get("required", [])}


def _body_doc(model: type[BaseModel], multipart: bool) -> dict[str, Any]:
    content = {"application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}}
    if multipart:
        content[MULTIPART] = {"schema": _form_schema(model)}
    return {"requestBody": {"required": True, "content": content}}


def document_bodies(openapi: dict[str, Any]) -> None:
    """Add the bodies this router parses itself (JSON or form) to the OpenAPI document's components."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for model in (VideoCreate, VideoRemix):
        schema = model.model_json_schema(ref_template=_REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema


async def _parse(request: Request, model: type[BaseModel]) -> BaseModel:
    """The body as JSON (typed strictly, as on /v1/jobs) or as the SDK's multipart form; 400 if invalid."""
    try:
        if request.headers.get("content-type", "").startswith(MULTIPART):
            form = await request.form()
            # A file part (the SDK's input_reference: image-to-video) is refused by name, never dropped.
            return model.model_validate(form_fields(model, dict(form.items())))
        return model.model_validate_json(await request.body())
    except ValidationError as exc:  # reported as FastAPI reports the bodies it parses itself
        raise RequestValidationError([{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]) from None


def _video_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("video_not_found", f"no video {raw}") from None


async def _submit(context: AppContext, response: Response, key: str | None, build) -> Video:
    def submit(session: Session, tenant_id: uuid.UUID) -> tuple[Video, Admission | None]:
        job_input = build(session, tenant_id)
        job, _, admission = submit_job(
            session, context.enqueue, tenant_id, job_input, context.settings, surface="videos", quotas=context.quotas
        )
        return video_object(job, context.settings), admission

    video, admission = await context.as_tenant(key, submit)
    response.headers.update(admission.headers() if admission else {})
    return video


@router.post(
    "",
    response_model=Video,
    openapi_extra=_body_doc(VideoCreate, multipart=True),
    responses=openai_error_responses(400, 401, 404, 409, 413, 429, 503),
    summary="Create a video",
)
async def create(request: Request, response: Response, context: Context, key: ApiKey) -> Video:
    """Queue a video (a job): `seconds` x the model's fps gives its frames, `size` its width and height;
    Chorus' own fields (`seed`, `negative_prompt`, `num_inference_steps`, `guidance_scale`, `cache`,
    `webhook`) may be added. JSON or multipart, as the openai SDK sends it."""
    body = await _parse(request, VideoCreate)
    return await _submit(context, response, key, lambda session, tenant_id: create_input(body, context.settings))


@router.get("", response_model=VideoList, responses=openai_error_responses(400, 401), summary="List videos")
async def index(
    context: Context,
    key: ApiKey,
    after: Annotated[str | None, Query(max_length=100, description="the last id of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Annotated[Literal["asc", "desc"], Query(description="by creation time")] = "desc",
) -> VideoList:
    def page(session: Session, tenant_id: uuid.UUID) -> VideoList:
        start = None
        if after is not None:
            try:
                last = get_job(session, tenant_id, _video_id(after))
            except NotFound:
                raise InvalidInput("invalid_after", f"after: no video {after}") from None
            start = (last.created_at, last.id)
        jobs, more = page_jobs(session, tenant_id, limit, start, newest_first=order == "desc")
        data = [video_object(job, context.settings) for job in jobs]
        return VideoList(
            data=data,
            first_id=data[0].id if data else None,
            last_id=data[-1].id if data else None,
            has_more=more,
        )

    return await context.as_tenant(key, page)


@router.get("/{video_id}", response_model=Video, responses=openai_error_responses(401, 404), summary="Get a video")
async def read(video_id: str, context: Context, key: ApiKey) -> Video:
    vid = _video_id(video_id)
    return await context.as_tenant(key, lambda s, t: video_object(get_job(s, t, vid), context.settings))


@router.delete(
    "/{video_id}", response_model=VideoDeleted, responses=openai_error_responses(401, 404, 409), summary="Delete"
)
async def delete(video_id: str, context: Context, key: ApiKey) -> VideoDeleted:
    """Deletes an ended video: the job, the cache entries its run left, and their stored objects."""
    vid = _video_id(video_id)
    job, prefixes = await context.as_tenant(key, lambda s, t: delete_job(s, t, vid))
    await run_in_threadpool(context.delete_objects, job, prefixes)  # after the commit: nothing points at them
    return VideoDeleted(id=str(job.id))


@router.get(
    "/{video_id}/content",
    responses={
        200: {"content": {"video/mp4": {}, **{kind: {} for _, kind in PREVIEWS.values()}}},
        307: {"description": "video: a redirect to the MP4 (presigned)"},
    }
    | openai_error_responses(400, 401, 404, 409),
    response_class=Response,
    summary="Download the video or a preview",
)
async def content(
    video_id: str,
    context: Context,
    key: ApiKey,
    variant: Annotated[Literal["video", "thumbnail", "spritesheet"], Query()] = "video",
) -> Response:
    """`video`: a redirect to the MP4; `thumbnail`: the middle frame (WebP); `spritesheet`: frames in a grid
    (JPEG). 409 until the video is completed."""
    vid = _video_id(video_id)
    job: Job = await context.as_tenant(key, lambda s, t: get_job(s, t, vid))
    if job.status != JobStatus.succeeded or not job.output:
        raise Conflict("video_not_ready", f"video {vid} is not completed ({job.status})")
    video_key = job.output["key"]
    if variant == "video":
        return RedirectResponse(context.store.url(video_key, context.settings.presign_expiry_s), status_code=307)
    if variant not in job.output.get("previews", ()):
        raise NotFound("variant_not_found", f"video {vid} has no {variant} (made before previews were)")
    data = await run_in_threadpool(context.store.get, preview_key(video_key, variant))
    return Response(data, media_type=PREVIEWS[variant][1])


@router.post(
    "/{video_id}/remix",
    response_model=Video,
    openapi_extra=_body_doc(VideoRemix, multipart=False),
    responses=openai_error_responses(400, 401, 404, 409, 413, 429, 503),
    summary="Remix a video",
)
async def remix(video_id: str, request: Request, response: Response, context: Context, key: ApiKey) -> Video:
    """A new video from the source's settings and a new prompt, reusing the source's run by the plan for the
    prompts' difference (Chorus' `remix_of`); its `remixed_from_video_id` names the source."""
    vid = _video_id(video_id)
    body = await _parse(request, VideoRemix)
    return await _submit(
        context, response, key, lambda session, tenant_id: remix_input(get_job(session, tenant_id, vid), body)
    )
