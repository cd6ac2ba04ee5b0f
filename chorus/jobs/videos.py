"""The OpenAI-style video surface (``/v1/videos``) over the same jobs: its request bodies, its ``Video``
object, and the mapping between the two. Torch-free (the API imports it).

A video is a job. ``seconds`` x the model's fps gives the frame count (the nearest the model accepts,
within half a second), ``size`` ("WxH") gives width and height, remix is Chorus' ``remix_of``, and
Chorus' own generation fields ride along as extra body fields, typed as on ``/v1/jobs``.
"""

from __future__ import annotations

import json
import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from chorus.config import Settings
from chorus.db.models import Job
from chorus.errors import InvalidInput
from chorus.jobs.schemas import JobInput, _check_text
from chorus.jobs.submit import model_card
from chorus.models.catalog import ModelLimits
from chorus.vocab import JobStatus

VideoStatus = Literal["queued", "in_progress", "completed", "failed"]
_STATUS: dict[JobStatus, VideoStatus] = {
    JobStatus.queued: "queued",
    JobStatus.running: "in_progress",
    JobStatus.succeeded: "completed",
    JobStatus.failed: "failed",
    JobStatus.canceled: "failed",  # OpenAI's video has no canceled: a failure with code "canceled"
}
# Chorus' fields a video request may add (as the SDK's extra_body), with their /v1/jobs types and limits.
EXTRA_FIELDS = ("negative_prompt", "num_inference_steps", "guidance_scale", "seed", "cache", "lora", "webhook")


class _VideoBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    _text = field_validator("prompt", "negative_prompt", check_fields=False)(_check_text)


def _body_model(name: str, doc: str, fields: dict[str, Any], shared: tuple[str, ...]) -> type[BaseModel]:
    taken = {field: (JobInput.model_fields[field].annotation, JobInput.model_fields[field]) for field in shared}
    return create_model(name, __base__=_VideoBody, __doc__=doc, **fields, **taken)


VideoCreate = _body_model(
    "VideoCreate",
    "The body of ``POST /v1/videos`` (JSON, or multipart form fields as the openai SDK sends them).",
    {
        "seconds": (
            str | None,
            Field(None, pattern=r"^[0-9]{1,4}(\.[0-9]{1,4})?$", description="clip length; default: the model's"),
        ),
        "size": (str | None, Field(None, pattern=r"^[0-9]{1,5}x[0-9]{1,5}$", description="WIDTHxHEIGHT")),
    },
    ("prompt", "model", *EXTRA_FIELDS),
)
VideoRemix = _body_model(
    "VideoRemix",
    "The body of ``POST /v1/videos/{id}/remix``: a new prompt; the rest is the source video's unless given.",
    {},
    ("prompt", *EXTRA_FIELDS),
)


class VideoError(BaseModel):
    code: str
    message: str


class Video(BaseModel):
    """A job as OpenAI's video API shows it (the openai SDK's ``Video``)."""

    id: str
    object: Literal["video"] = "video"
    status: VideoStatus
    progress: int = Field(ge=0, le=100)
    created_at: int = Field(description="Unix seconds")
    completed_at: int | None = Field(description="Unix seconds")
    expires_at: int | None = Field(description="Unix seconds; null: kept until deleted")
    model: str
    prompt: str
    seconds: str
    size: str = Field(description="WIDTHxHEIGHT")
    remixed_from_video_id: str | None
    error: VideoError | None


class VideoList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Video]
    first_id: str | None
    last_id: str | None
    has_more: bool


class VideoDeleted(BaseModel):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool = True


def frames_for_seconds(seconds: str, limits: ModelLimits) -> int:
    """The model's frame count nearest ``seconds`` x fps; InvalidInput if none is within half a second."""
    target = float(seconds) * limits.fps
    nearest = min(limits.frames, key=lambda frames: abs(frames - target))
    if abs(nearest - target) > limits.fps / 2:
        allowed = ", ".join(f'"{frames / limits.fps:g}"' for frames in limits.frames)
        raise InvalidInput("invalid_seconds", f"seconds must be one of {allowed} for this model ({limits.fps} fps)")
    return nearest


def _size(size: str) -> dict[str, int]:
    width, height = size.split("x")
    return {"width": int(width), "height": int(height)}


# The job fields a video's fields become, for errors: the client sent seconds and size.
_SENT_AS = {"num_frames": "seconds", "width": "size", "height": "size"}


def _job_input(fields: dict[str, Any]) -> JobInput:
    try:
        return JobInput(**fields)
    except ValidationError as exc:  # what seconds or size became is out of the job's range (e.g. "0x0")
        error = exc.errors()[0]
        name = _SENT_AS.get(str(error["loc"][0]), str(error["loc"][0]))
        raise InvalidInput(f"invalid_{name}", f"{name}: {error['loc'][0]} {error['msg']}") from None


def create_input(body: BaseModel, settings: Settings) -> JobInput:
    """The job of a ``VideoCreate``; InvalidInput for a model not installed or a length it cannot make."""
    fields = body.model_dump(mode="json", exclude_unset=True, exclude={"seconds", "size"})
    if body.seconds is not None:
        fields["num_frames"] = frames_for_seconds(body.seconds, model_card(body.model, settings).limits)
    if body.size is not None:
        fields |= _size(body.size)
    return _job_input(fields)


def remix_input(source: Job, body: BaseModel) -> JobInput:
    """A remix of ``source``: its model, length, size, steps, guidance and seed, with the new prompt
    (and any field the body gives), reusing its run by the plan for the prompts' difference."""
    kept = ("model", "num_frames", "height", "width", "num_inference_steps", "guidance_scale", "seed")
    fields = {name: source.input[name] for name in kept} | {
        "negative_prompt": source.input["negative_prompt"],
        "lora": source.input.get("lora"),
    }
    return _job_input(fields | body.model_dump(mode="json", exclude_unset=True) | {"remix_of": str(source.id)})


def _unix(moment) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def _fps(job: Job, settings: Settings) -> int | None:
    if job.output:
        return job.output["fps"]
    try:
        return model_card(job.model, settings).limits.fps
    except InvalidInput:  # the model was uninstalled since
        return None


def video_object(job: Job, settings: Settings) -> Video:
    spec = job.input
    fps = _fps(job, settings)
    error = None
    if job.status == JobStatus.canceled:
        error = VideoError(code="canceled", message="the video was canceled")
    elif job.error_code:
        error = VideoError(code=job.error_code, message=job.error_message or "")
    return Video(
        id=str(job.id),
        status=_STATUS[job.status],
        progress=job.progress,
        created_at=_unix(job.created_at),
        completed_at=_unix(job.completed_at),
        expires_at=None,
        model=job.model,
        prompt=spec["prompt"],
        seconds=f"{spec['num_frames'] / fps:g}" if fps else "",
        size=f"{spec['width']}x{spec['height']}",
        remixed_from_video_id=spec.get("remix_of"),
        error=error,
    )


def _members(annotation: Any) -> tuple[Any, ...]:
    return typing.get_args(annotation) or (annotation,)


def _numeric(annotation: Any) -> bool:
    return any(arg in (int, float) for arg in _members(annotation))


def _submodel(annotation: Any) -> type[BaseModel] | None:
    return next((a for a in _members(annotation) if isinstance(a, type) and issubclass(a, BaseModel)), None)


def form_fields(model: type[BaseModel], form: dict[str, Any]) -> dict[str, Any]:
    """Multipart fields as the openai SDK flattens them (``cache[mode]=off``, every value a string) back
    into the body's shape: brackets nest, and numbers are read as JSON where the field is a number."""
    nested: dict[str, Any] = {}
    for key, value in form.items():
        head, _, rest = key.partition("[")
        if rest:
            nested.setdefault(head, {})[rest.rstrip("]")] = value
        else:
            nested[key] = value
    return _typed(model, nested)


def _typed(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    typed: dict[str, Any] = {}
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            typed[key] = value  # an unknown field: refused by validation, named in the error
            continue
        inner = _submodel(field.annotation)
        if isinstance(value, dict) and inner is not None:
            typed[key] = _typed(inner, value)
        elif isinstance(value, str) and _numeric(field.annotation):
            typed[key] = _json_number(value)
        else:
            typed[key] = value
    return typed


def _json_number(value: str) -> Any:
    try:
        number = json.loads(value)
    except ValueError:
        return value  # validation names it
    return number if isinstance(number, int | float) and not isinstance(number, bool) else value
