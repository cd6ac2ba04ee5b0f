"""Liveness and readiness probes (no auth)."""

from __future__ import annotations

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.context import AppContext, Context
from api.errors import error_response, error_responses
from api.schemas import Health, Readiness

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_S = 3.0


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health()


def _database(context: AppContext) -> None:
    with context.sessions() as session:
        session.execute(text("SELECT 1"))


def _broker(context: AppContext) -> None:
    with context.celery.connection_for_write() as connection:
        connection.ensure_connection(max_retries=0, timeout=CHECK_TIMEOUT_S)  # one try: a probe must answer fast


def _store(context: AppContext) -> None:
    context.store.ping()


_CHECKS = {"database": _database, "broker": _broker, "store": _store}


async def _check(context: AppContext, name: str, results: dict[str, str]) -> None:
    try:
        with anyio.fail_after(CHECK_TIMEOUT_S):
            await anyio.to_thread.run_sync(_CHECKS[name], context, abandon_on_cancel=True)
        results[name] = "ok"
    except TimeoutError:
        results[name] = f"no answer in {CHECK_TIMEOUT_S} s"
    except Exception as exc:
        results[name] = f"{type(exc).__name__}: {exc}"[:300]


@router.get("/readyz", response_model=Readiness, responses=error_responses(503), summary="Dependencies reachable")
async def readyz(context: Context) -> Readiness | JSONResponse:
    """Checks the database, the broker and the store at once; 503 names each part that failed."""
    results: dict[str, str] = {}
    async with anyio.create_task_group() as group:
        for name in _CHECKS:
            group.start_soon(_check, context, name, results)
    failed = [name for name in _CHECKS if results[name] != "ok"]
    if failed:
        message = "; ".join(f"{name}: {results[name]}" for name in failed)
        return error_response(503, f"{failed[0]}_unavailable", f"not ready: {message}", details=results)
    return Readiness(checks=results)
