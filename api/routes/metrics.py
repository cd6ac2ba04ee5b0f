"""``GET /metrics`` in the Prometheus text format (no auth: expose it on the cluster network only)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool

from api.context import Context
from chorus.metrics.prometheus import ChorusCollector

router = APIRouter(tags=["health"])


def _registry(request: Request, context: Context) -> CollectorRegistry:
    registry = getattr(request.app.state, "metrics_registry", None)
    if registry is None:  # one per app, made on the first scrape
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ChorusCollector(context.settings, context.sessions, context.broker))
        request.app.state.metrics_registry = registry
    return registry


@router.get("/metrics", response_class=Response, summary="Prometheus metrics")
async def metrics(request: Request, context: Context) -> Response:
    """Queue depths, jobs by status, job histograms, cache hit ratio, worker heartbeats (read at scrape time)."""
    body = await run_in_threadpool(generate_latest, _registry(request, context))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
