"""The FastAPI app factory: ``uvicorn api.app:create_app --factory``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool

import chorus
from api.body_limit import BodyLimit
from api.context import AppContext
from api.errors import install_error_handlers
from api.routes import files, health, jobs, metrics, models, videos, webhooks
from chorus.broker.app import make_celery
from chorus.config import Settings, get_settings
from chorus.storage import open_store

MAX_BODY_BYTES = 64 * 1024  # a job body is a few KB; larger ones are refused before parsing (413)
log = logging.getLogger(__name__)


def api_engine(database_url: str) -> Engine:
    """The API's connection pool, tuned for the submit hot path (measured with bench/api_submit.py).

    - Autocommit: every API write is one conditional statement, atomic by itself, so the BEGIN and
      COMMIT round trips are pure cost.
    - No pre-ping (a round trip per checkout): after a database restart the first request that
      meets a dead connection fails with 503 and SQLAlchemy drops the whole pool, so the next
      requests get fresh connections.
    """
    return create_engine(database_url, isolation_level="AUTOCOMMIT", pool_size=10, max_overflow=20)


async def requeue_forever(context: AppContext) -> None:
    """Every CHORUS_REQUEUE_INTERVAL_S, re-enqueue jobs whose message was lost; a failed sweep waits for the next."""
    while True:
        await asyncio.sleep(context.settings.requeue_interval_s)
        try:
            await run_in_threadpool(context.requeue_lost)
        except Exception as exc:  # the database or the broker is down: the next tick tries again
            log.warning("requeue sweep failed: %s", exc)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = api_engine(settings.database_url)
    context = AppContext(
        settings=settings,
        sessions=sessionmaker(engine, expire_on_commit=False),
        celery=make_celery(settings),
        store=open_store(settings),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        requeue = asyncio.create_task(requeue_forever(context)) if settings.requeue_interval_s > 0 else None
        yield
        if requeue is not None:
            requeue.cancel()
        context.celery.pool.force_close_all()
        context.broker.close()
        engine.dispose()

    app = FastAPI(
        title="Chorus",
        version=chorus.__version__,
        summary="Text-to-video jobs, served faster by reusing work across similar requests.",
        lifespan=lifespan,
    )
    app.state.context = context
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    for module in (jobs, videos, models, health, files, webhooks, metrics):
        app.include_router(module.router)
    default_openapi = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            videos.document_bodies(default_openapi())  # fills app.openapi_schema, then completes it
        return app.openapi_schema

    app.openapi = openapi
    return app
