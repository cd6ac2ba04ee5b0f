"""One settings object for every process (api, worker, CLI), read from CHORUS_* env vars."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHORUS_", env_file=".env", extra="ignore")

    # Where things live
    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/chorus"
    broker_url: str = "redis://127.0.0.1:6379/0"
    store_url: str = Field(
        default="file://./chorus-data/store",
        description="file:///abs/dir or s3://bucket/prefix for tensors and videos",
    )
    s3_endpoint_url: str | None = None  # MinIO/R2/moto; None means AWS
    s3_region: str = "us-east-1"
    public_base_url: str = "http://127.0.0.1:8000"  # used for local-store video links

    # Models
    models_dir: Path = REPO_MODELS_DIR
    default_model: str = "chorus-shapes"
    device: str = "cpu"

    # Queue and worker
    queue_name: str = "chorus"
    max_batch: int = 4
    job_time_limit_s: int = 600
    visibility_timeout_s: int = 3600  # must exceed the longest job
    presign_expiry_s: int = 3600
    max_wait_s: int = 60  # cap of `Prefer: wait=N`

    # Webhooks
    webhook_progress_interval_s: float = 2.0
    webhook_allow_private: bool = False

    # Cache
    cache_enabled: bool = True
    cache_budget_bytes: int = 2 * 1024**3  # per cache domain
    cache_ttl_s: int = 7 * 24 * 3600
    cache_local_entries: int = 64  # worker-local LRU size


@lru_cache
def get_settings() -> Settings:
    return Settings()
