"""HTTP envelopes around the job object (which lives in chorus.jobs.schemas, shared with webhooks)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from chorus.jobs.schemas import JobInput, JobView

__all__ = [
    "ErrorBody",
    "ErrorDetail",
    "Health",
    "JobInput",
    "JobList",
    "JobView",
    "OpenAIErrorBody",
    "OpenAIErrorDetail",
    "Readiness",
]


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable, stable")
    message: str
    details: Any = Field(None, description="e.g. every failed field of a validation error")


class ErrorBody(BaseModel):
    """Every error response has this body."""

    error: ErrorDetail


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str = Field(description="invalid_request_error, authentication_error, rate_limit_error or server_error")
    param: str | None = Field(description="the request field at fault, if one is")
    code: str = Field(description="machine-readable, stable (the native API's codes)")


class OpenAIErrorBody(BaseModel):
    """Every error response of the OpenAI-style surface (/v1/videos, /v1/models) has this body."""

    error: OpenAIErrorDetail


class JobList(BaseModel):
    data: list[JobView]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


class Health(BaseModel):
    status: str = "ok"


class Readiness(BaseModel):
    status: str = "ready"
    checks: dict[str, str] = Field(description="database, broker, store: 'ok'")
