"""/v1/jobs: submit, read, list, cancel, and the video redirect."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.context import ApiKey, AppContext, Context
from api.errors import error_responses
from api.schemas import JobInput, JobList, JobView
from api.waiting import parse_wait, wait_for_end
from chorus.db.models import Job
from chorus.errors import Conflict, NotFound
from chorus.jobs.queries import cancel_job, get_job, list_jobs, queue_positions
from chorus.jobs.quota import Admission
from chorus.jobs.submit import submit_job
from chorus.jobs.view import job_model
from chorus.vocab import JobStatus

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

IdempotencyKey = Annotated[
    str | None,
    Header(min_length=1, max_length=200, description="same key and body: the same job; another body: 409"),
]
Prefer = Annotated[
    str | None,
    Header(description="`wait=N`: hold the response up to N s (capped by CHORUS_MAX_WAIT_S) until the job ends"),
]


def _job_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("job_not_found", f"no job {raw}") from None


def _view(context: AppContext, session: Session, job: Job) -> JobView:
    position = queue_positions(session, [job]).get(job.id)
    return job_model(job, context.store, context.settings, position)


async def _respond(
    context: AppContext, request: Request, response: Response, key: str | None, job_id: uuid.UUID, prefer: str | None
) -> JobView:
    """The job object, after honouring ``Prefer: wait`` if the client asked for it."""

    def fetch(session: Session, tenant_id: uuid.UUID) -> JobView:
        return _view(context, session, get_job(session, tenant_id, job_id))

    # Authorised (and the job found) before any waiting: a bad key or id never holds a connection.
    view = await context.as_tenant(key, fetch)
    wait = parse_wait(prefer, context.settings.max_wait_s)
    if wait is None:
        return view
    response.headers["Preference-Applied"] = f"wait={wait}"
    if view.status.is_terminal:
        return view
    await wait_for_end(context, request, job_id, wait)
    return await context.as_tenant(key, fetch)


@router.post(
    "",
    status_code=202,
    response_model=JobView,
    responses={
        202: {
            "description": "Queued (or replayed)",
            "headers": {
                "Location": {"description": "/v1/jobs/{id}", "schema": {"type": "string"}},
                "Idempotent-Replayed": {"description": "true: an earlier job returned", "schema": {"type": "string"}},
                "Preference-Applied": {
                    "description": "wait=N, when Prefer: wait was honoured",
                    "schema": {"type": "string"},
                },
            },
        }
    }
    | error_responses(400, 401, 404, 409, 413, 422, 429, 503),
    summary="Submit a job",
)
async def create(
    body: JobInput,
    request: Request,
    response: Response,
    context: Context,
    key: ApiKey,
    idempotency_key: IdempotencyKey = None,
    prefer: Prefer = None,
) -> JobView:
    """Queue a text-to-video job. 202 with the job and its `Location`, also when an `Idempotency-Key` replays
    an earlier submit (then `Idempotent-Replayed: true`)."""

    def submit(session: Session, tenant_id: uuid.UUID) -> tuple[Job, bool, Admission | None]:
        return submit_job(
            session, context.enqueue, tenant_id, body, context.settings, idempotency_key, quotas=context.quotas
        )

    job, created, admission = await context.as_tenant(key, submit)
    response.headers.update(admission.headers() if admission else {})
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    if parse_wait(prefer, context.settings.max_wait_s) is None and created:
        # The hot path: a fresh job is queued, with no jobs ahead counted (that costs a query).
        return job_model(job, context.store, context.settings)
    return await _respond(context, request, response, key, job.id, prefer)


@router.get("", response_model=JobList, responses=error_responses(401, 422), summary="List jobs, newest first")
async def index(
    context: Context,
    key: ApiKey,
    status: Annotated[list[JobStatus] | None, Query(description="only these statuses (repeatable)")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
) -> JobList:
    def page(session: Session, tenant_id: uuid.UUID) -> JobList:
        jobs, next_cursor = list_jobs(session, tenant_id, status or (), limit, cursor)
        positions = queue_positions(session, jobs)
        views = [job_model(job, context.store, context.settings, positions.get(job.id)) for job in jobs]
        return JobList(data=views, next_cursor=next_cursor)

    return await context.as_tenant(key, page)


@router.get("/{job_id}", response_model=JobView, responses=error_responses(401, 404, 422), summary="Get a job")
async def read(
    job_id: str, request: Request, response: Response, context: Context, key: ApiKey, prefer: Prefer = None
) -> JobView:
    return await _respond(context, request, response, key, _job_id(job_id), prefer)


@router.post(
    "/{job_id}/cancel",
    response_model=JobView,
    responses={202: {"model": JobView, "description": "running: the worker stops between steps"}}
    | error_responses(401, 404, 409, 422),
    summary="Cancel a job",
)
async def cancel(job_id: str, response: Response, context: Context, key: ApiKey) -> JobView:
    """A queued job is canceled at once (200); a running one is asked to stop (202); an ended one is 409."""
    jid = _job_id(job_id)

    def stop(session: Session, tenant_id: uuid.UUID) -> tuple[JobView, bool]:
        job, done = cancel_job(session, tenant_id, jid)
        return job_model(job, context.store, context.settings), done

    view, done = await context.as_tenant(key, stop)
    if done:  # ended here, after the commit: its job.canceled webhook goes out now (the worker never sees it)
        await run_in_threadpool(context.notifier.finished, [jid])
    response.status_code = 200 if done else 202
    return view


@router.get(
    "/{job_id}/video",
    status_code=307,
    response_class=RedirectResponse,
    responses=error_responses(401, 404, 409, 422),
    summary="Redirect to the video",
)
async def video(job_id: str, context: Context, key: ApiKey) -> RedirectResponse:
    jid = _job_id(job_id)
    job = await context.as_tenant(key, lambda s, t: get_job(s, t, jid))
    if job.status != JobStatus.succeeded or not job.output:
        raise Conflict("video_not_ready", f"job {jid} has no video ({job.status})")
    return RedirectResponse(context.store.url(job.output["key"], context.settings.presign_expiry_s), status_code=307)
