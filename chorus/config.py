"""One settings object for every process (api, worker, CLI), read from CHORUS_* env vars."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CHORUS_", env_file=".env", extra="ignore", use_attribute_docstrings=True
    )

    # Where things live
    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/chorus"
    """SQLAlchemy URL of PostgreSQL (with the pgvector extension available): the truth about jobs."""
    broker_url: str = "redis://127.0.0.1:6379/0"
    """Celery broker: redis://host:port/db, or redis+socket:///path/redis.sock."""
    store_url: str = Field(
        default="file://./chorus-data/store",
        description="file:///abs/dir or s3://bucket/prefix for tensors and videos",
    )
    s3_endpoint_url: str | None = None
    """S3 endpoint for MinIO, R2 or moto; unset means AWS. Credentials come from the usual AWS_* variables."""
    s3_region: str = "us-east-1"
    """S3 region (also signs presigned URLs)."""
    public_base_url: str = "http://127.0.0.1:8000"
    """The API's public URL; video links of a local-folder store point at its /v1/files route."""
    link_secret: str = ""
    """Secret (any long random string, the same for API and workers) that signs a local-folder store's video
    links; links expire after CHORUS_PRESIGN_EXPIRY_S. `chorus up` and `chorus demo` make one per data folder."""

    # Models
    models_dir: Path = REPO_MODELS_DIR
    """Folder of installed models: one folder per model id, holding chorus_model.json."""
    default_model: str = "chorus-shapes"
    """Model of jobs that name none; workers load it at start."""
    device: str = "cpu"
    """Torch device the worker runs models on (cpu, cuda, cuda:1…)."""
    model_load_timeout_s: float = 1800
    """Loading a model (weights from disk, LoRA fused, moved to the device) taking longer fails the load. Half an
    hour: Wan2.1 14B's folder is ~70 GB (UMT5-XXL and the transformer in fp32) read from network storage."""
    dtype: Literal["fp32", "bf16", "fp16"] = "fp32"
    """Precision of a model's transformer and text encoder (bf16 for real Wan2.1 on a GPU); latents and the
    VAE stay in fp32, as WanPipeline keeps them."""
    lora_resident_max: int = 4
    """Per-request LoRAs a worker keeps loaded (unfused) on a model; one more unloads the least recently used."""

    # Queue and worker
    queue_name: str = "chorus"
    """Celery queue the API sends job ids to and workers consume."""
    max_batch: int = 4
    """Most jobs of the same model and shape a worker denoises in one batched forward."""
    job_time_limit_s: int = 3600
    """A job still running this long after its claim fails with code `timeout` (checked between steps). An hour:
    Wan2.1 14B at 720p, 81 frames, 50 guided steps takes tens of minutes on one GPU; a job past an hour is stuck."""
    visibility_timeout_s: int = 7200
    """Redis redelivers an unacknowledged message after this long; must exceed the longest job (twice the limit)."""
    max_attempts: int = 3
    """Runs of one job at most: a job whose worker died (SIGKILL, OOM) is taken over by the next worker that
    gets its message, until this many attempts; then it fails with `worker_lost`."""
    requeue_interval_s: float = 30.0
    """How often the API looks for jobs whose queue message was lost (Redis restarted without persistence, a
    crash between commit and enqueue) and sends it again; one API process per interval does it. 0: never."""
    requeue_after_s: float = 60.0
    """Age from which a job that is queued, or running under a dead worker, and has no message in Redis is
    re-enqueued by that sweep."""
    heartbeat_every_s: float = Field(10.0, gt=0)
    """How often a worker marks itself alive in Redis; it counts as dead three beats after its last one, and
    the requeue sweep and the next worker then take over its jobs."""
    presign_expiry_s: int = 3600
    """Lifetime of the presigned video URLs in job responses."""
    max_wait_s: int = 60
    """Cap of `Prefer: wait=N` on job requests."""
    auth_cache_s: float = 5.0
    """How long the API trusts a verified API key before checking it again: a revoked key stops working
    within this time (0: check on every request)."""

    # Quotas (per tenant; `chorus tenants quota` overrides them for one tenant)
    quota_submits_per_minute: int = 600
    """Job submits one tenant may make in any 60 s (both APIs together); more get 429 with Retry-After. 0: no limit."""
    quota_max_active_jobs: int = 200
    """Jobs one tenant may have queued or running at once; a submit over it gets 429. 0: no limit."""

    # Webhooks
    webhook_progress_interval_s: float = 2.0
    """Least time between two progress webhooks of one job."""
    webhook_allow_private: bool = False
    """Allow webhook URLs that resolve to private or loopback addresses (development only); link-local and cloud
    metadata addresses stay refused."""
    webhook_allow_networks: list[str] = []
    """Networks (CIDR, JSON list) webhooks may target despite the SSRF guard, e.g. ["127.0.0.0/8"] for a local
    receiver or an internal one."""
    webhook_timeout_s: float = 10.0
    """How long one webhook attempt may take (connect and answer) before it counts as failed."""
    webhook_max_attempts: int = 8
    """Attempts per webhook event (the first included) before it is given up."""
    webhook_retry_base_s: float = 5.0
    """First retry delay; each retry doubles it (with jitter), up to CHORUS_WEBHOOK_RETRY_MAX_S."""
    webhook_retry_max_s: float = 3600.0
    """Longest delay between two attempts, also the cap of a receiver's Retry-After."""

    # Cache. The reuse settings below are unset by default: unset, the library's own default holds
    # (chorus.reuse.session.ReuseConfig and the configs it holds); set, it overrides that one field.
    cache_enabled: bool | None = None
    """Reuse work across similar requests (jobs can still opt out with cache.mode=off)."""
    cache_budget_bytes: int = 16 * 1024**3
    """Stored cache bytes allowed per cache domain (a tenant, or the shared pool) before eviction. Sized for
    real Wan2.1 entries (scripts/entry_sizes.py: up to ~46 MB at 480p/50 steps, ~100 MB at 720p): a few
    hundred entries per domain, where a cold cache stops missing."""
    cache_ttl_s: int = 7 * 24 * 3600
    """Cache entries expire this long after they were written."""
    cache_local_bytes: int = 2 * 1024**3
    """Bound of the worker-local LRU of fetched cache entries, in tensor bytes (host memory): ~40 real Wan2.1
    480p entries, the hot set one worker reuses over and over."""
    text_encoding_cache_mb: float = 256.0
    """Bound of the worker-local LRU of text-encoder outputs (prompts and negative prompts, per model revision),
    in MB of host memory; 0: every prompt is encoded. A real Wan2.1 UMT5 output is 512 x 4096 floats (8 MB
    in fp32): 32 prompts at the default. Frames are bit-identical with it on or off."""
    cache_admit: bool | None = None
    """Store what full-compute (miss) jobs capture as new cache entries; off: workers only read the cache."""
    cache_lookup_candidates: int | None = Field(default=None, ge=1)
    """Nearest entries a lookup weighs: the one whose prompt's words admit the largest plan is fetched (the
    nearest by embedding often differs in a word no plan covers); 1: the nearest."""
    cache_min_similarity: float | None = None
    """Edited prompts less similar than this (cosine of prompt embeddings) to their nearest entry compute in full."""
    cache_full_similarity: float | None = None
    """Edited prompts at least this similar get the largest reuse plan; plans grow linearly up to it."""
    cache_stage1_sigma: float | None = None
    """Noise level down to which an edited prompt reuses its source in full (Stage 1); 1.0: no Stage 1."""
    cache_stage2_sigma: float | None = None
    """Noise level down to which an edited prompt then recomputes only the edit's region (Stage 2)."""
    cache_min_repair_steps: int | None = None
    """Final steps that still move the latent, run in full by every edit or seed variant (Stage 3)."""
    cache_seed_variant_sigma: float | None = None
    """Noise level down to which an identical prompt with another seed or negative prompt reuses its source, at
    step counts where the model's calibration holds no seed-variant cell."""
    cache_replay_identical: bool | None = None
    """Identical prompt, seed and negative prompt: replay the stored trajectory instead of computing."""
    cache_max_region_fraction: float | None = None
    """An edit region larger than this share of the frame drops Stage 2 and halves Stage 1."""
    cache_min_edit_steps: int | None = None
    """Edited prompts with fewer steps than this compute in full (a few-step model fixes what an edit changes),
    unless the model's calibration (`chorus calibrate`) has a plan for the edit's kinds at that step count."""
    cache_region_threshold: float | None = None
    """Attention level (share of the way from a map's min to its max) at which a video token joins an edit region."""
    cache_tgaa_alpha: float | None = None
    """Token-guided attention amplification in Stage 2: weight on the edited words' cross-attention (1: off).
    Off by default: on the shipped model it lost accuracy at 4 steps and changed nothing measurable at 20
    (bench/results/calibration.md)."""
    cache_capture_latent_steps: list[int] | None = None
    """Latents a miss stores, as counts of steps done, JSON (e.g. [1,2]); unset: what the policy's plans read."""
    cache_capture_map_steps: list[int] | None = None
    """0-based steps whose cross-attention maps a miss stores, JSON; unset: what the policy's plans read."""
    cache_capture_map_layers: list[int] | None = None
    """Transformer blocks whose cross-attention maps are recorded (and averaged), JSON; unset: all."""
    cache_capture_map_stride: list[int] | None = None
    """Average-pool stored maps over the (t, h, w) token grid by this, JSON; larger: smaller entries."""
    cache_context_max_mb: float | None = None
    """Most MB of Stage 2's context (the source's self-attention keys and values) one entry stores: the
    finest pooling that fits is chosen per model and size, none fitting stores none (Stage 2 then runs
    context-free). Full context is tiny for the shipped model and about 6 GB per step for Wan2.1 480p."""


@lru_cache
def get_settings() -> Settings:
    return Settings()
