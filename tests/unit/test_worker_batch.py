"""A job's stored input, as the submit path writes it, becomes the engine's request and the cache's job."""

import uuid

from chorus.db.models import Job
from chorus.jobs.schemas import CacheOptions, ResolvedInput
from worker.batch import cache_job, identical_groups

STORED = ResolvedInput(
    prompt="a red square moving right",
    negative_prompt="blurry",
    model="chorus-shapes",
    num_frames=8,
    height=32,
    width=48,
    num_inference_steps=4,
    guidance_scale=2.5,
    seed=7,
    webhook="https://example.com/hook",
    metadata={"user": "a"},
)


def stored_job(**changes) -> Job:
    body = STORED.model_copy(update=changes).model_dump(mode="json")
    return Job(id=uuid.uuid4(), tenant_id=uuid.uuid4(), model="chorus-shapes", input=body, batch_key="k")


def test_the_request_carries_every_generation_field_and_nothing_else():
    job = stored_job()
    record = cache_job(job)
    request = record.request
    assert (request.prompt, request.negative_prompt, request.seed) == ("a red square moving right", "blurry", 7)
    assert (request.num_frames, request.height, request.width) == (8, 32, 48)
    assert (request.num_inference_steps, request.guidance_scale) == (4, 2.5)
    assert (record.key, record.tenant, record.off_reason, record.remix_of) == (
        str(job.id),
        str(job.tenant_id),
        None,
        None,
    )


def test_cache_mode_off_and_remix_reach_the_cache_job():
    source = uuid.uuid4()
    record = cache_job(stored_job(cache=CacheOptions(mode="off"), remix_of=source))
    assert record.off_reason == "the job asked for cache mode off"
    assert record.remix_of == str(source)


def test_rows_follow_coalesced_with_inside_the_batch_leader_first():
    """A follower claimed before its leader (a taken-over batch is ordered by age) still sits after it; a
    job following a job outside the batch leads a row of its own."""
    lead, mate, other, outside = (stored_job() for _ in range(4))
    mate.coalesced_with, outside.coalesced_with = lead.id, uuid.uuid4()
    rows = identical_groups([mate, other, lead, outside])
    assert [[job.id for job in row] for row in rows] == [[lead.id, mate.id], [other.id], [outside.id]]
