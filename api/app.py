"""The FastAPI app factory: ``uvicorn api.app:create_app --factory``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import chorus
from api.body_limit import BodyLimit
from api.context import AppContext
from api.errors import install_error_handlers
from api.routes import files, health, jobs
from chorus.config import Settings, get_settings
from chorus.db.session import get_engine, session_factory
from chorus.queue import make_celery
from chorus.storage import open_store

MAX_BODY_BYTES = 64 * 1024


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    context = AppContext(
        settings=settings,
        sessions=session_factory(settings.database_url),
        celery=make_celery(settings),
        store=open_store(settings),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        context.celery.pool.force_close_all()
        get_engine(settings.database_url).dispose()

    app = FastAPI(
        title="Chorus",
        version=chorus.__version__,
        summary="Text-to-video jobs, served faster by reusing work across similar requests.",
        lifespan=lifespan,
    )
    app.state.context = context
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    for module in (jobs, health, files):
        app.include_router(module.router)
    return app
