"""The job's JSON: what a client sends (``JobInput``) and what it reads back (``JobView``).

Pydantic models, torch-free, shared by the API (request/response schemas,
OpenAPI) and the worker (webhook payloads are the same job object).
"""

from __future__ import annotations

import json
import unicodedata
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, Strict, field_validator

from chorus.vocab import JobStatus, WebhookEvent

MAX_PROMPT_CHARS = 2000
MAX_METADATA_BYTES = 4096


def _check_text(value: str) -> str:
    """Printable text only: control characters (NUL…) and lone surrogates cannot be stored or encoded."""
    if any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\t\n\r" for ch in value):
        raise ValueError("must be text without control characters")
    return value


class CacheOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["auto", "off"] = Field("auto", description="auto: reuse similar earlier requests; off: never")


class LoraChoice(BaseModel):
    """A LoRA registered for the model (``chorus models add-lora``), applied to this request at ``scale``."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    scale: Annotated[float, Strict(), Field(ge=-10, le=10)] = 1.0


class JobInput(BaseModel):
    """The body of ``POST /v1/jobs``. Unset generation fields take the chosen model's defaults."""

    # Numbers strictly: JSON's true is no seed (lax pydantic would read it as 1).
    model_config = ConfigDict(extra="forbid")

    prompt: Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS)]
    negative_prompt: Annotated[str, Field(max_length=MAX_PROMPT_CHARS)] = ""
    model: Annotated[str | None, Field(min_length=1, max_length=200, description="default: the server's")] = None
    num_frames: Annotated[int | None, Strict(), Field(ge=1, le=1024)] = None
    height: Annotated[int | None, Strict(), Field(ge=1, le=4096)] = None
    width: Annotated[int | None, Strict(), Field(ge=1, le=4096)] = None
    num_inference_steps: Annotated[int | None, Strict(), Field(ge=1, le=1000)] = None
    guidance_scale: Annotated[float | None, Strict(), Field(ge=0, le=50)] = None
    seed: Annotated[int | None, Strict(), Field(ge=0, le=2**32 - 1, description="default: random, then stored")] = None
    webhook: Annotated[AnyHttpUrl | None, Field(description="POSTed the job object on the chosen events")] = None
    webhook_events: Annotated[
        list[WebhookEvent], Field(max_length=5, description="terminal events (succeeded, failed, canceled) always sent")
    ] = [WebhookEvent.succeeded, WebhookEvent.failed, WebhookEvent.canceled]
    cache: CacheOptions = CacheOptions()
    lora: Annotated[
        LoraChoice | None, Field(description="a LoRA of the model (GET /v1/models lists them); 404 if unknown")
    ] = None
    remix_of: Annotated[
        uuid.UUID | None,
        Field(
            description="an earlier job of yours whose run to reuse for this prompt, by the plan for the prompts' "
            "difference (no similarity lookup); 404 if there is no such job; runs in full if its run left the cache"
        ),
    ] = None
    metadata: Annotated[
        dict[str, Any] | None, Field(description=f"any JSON object up to {MAX_METADATA_BYTES} bytes")
    ] = None

    _text = field_validator("prompt", "negative_prompt")(_check_text)

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value, separators=(",", ":"))) > MAX_METADATA_BYTES:
            raise ValueError(f"must serialise to at most {MAX_METADATA_BYTES} bytes")
        return value


Surface = Literal["jobs", "videos"]  # the API a job was submitted through: /v1/jobs or /v1/videos


class ResolvedInput(JobInput):
    """The input as stored and run: every generation field filled in."""

    model_config = ConfigDict(extra="ignore")

    surface: Surface = Field("jobs", description="the API it was submitted through; its webhooks speak that API")

    model: str
    num_frames: int
    height: int
    width: int
    num_inference_steps: int
    guidance_scale: float
    seed: int


class JobOutput(BaseModel):
    video_url: str = Field(description="presigned; valid until expires_at")
    expires_at: datetime
    width: int
    height: int
    num_frames: int
    fps: int
    bytes: int


class JobFailure(BaseModel):
    code: str
    message: str


class JobMetrics(BaseModel):
    queue_seconds: float | None = Field(None, description="created to started")
    run_seconds: float | None = Field(None, description="started to finished")
    denoise_seconds: float | None = None
    batch_size: int | None = Field(None, description="jobs that shared its batched forward")
    batch_id: str | None = Field(None, description="the batch's lead job: jobs with equal batch_id shared forwards")
    forwards: int | None = Field(None, description="transformer calls of its batch (a cache hit skips some)")
    tokens: int | None = Field(None, description="its share of the video tokens the transformer processed")
    cache: dict[str, Any] | None = Field(
        None,
        description="once denoised: the cache plan (hit, reason, source, similarity, differing tokens, stage steps, "
        "share of tokens recomputed per step) and the lookup/fetch seconds",
    )


class JobView(BaseModel):
    """A job as clients (and webhook receivers) see it."""

    id: uuid.UUID
    status: JobStatus
    progress: int = Field(ge=0, le=100)
    queue_position: int | None = Field(None, description="while queued: jobs queued ahead of this one")
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    input: ResolvedInput
    output: JobOutput | None
    error: JobFailure | None
    metrics: JobMetrics
