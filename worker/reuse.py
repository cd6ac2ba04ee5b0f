"""The inter-request cache around one batched denoise (the flow of ``chorus.cache``'s docstring, per batch).

Before the denoise (``WorkerCache.prepare``): per job, honour ``input.cache.mode`` and CHORUS_CACHE_ENABLED;
embed the batch's prompts in one call; look each job up in its namespace and domain, starting the matched
entry's fetch in the background at once (through the worker-local LRU), so fetches overlap the remaining
lookups and each other; then plan each job from its fetched source.
After the jobs are delivered (``WorkerCache.settle``): count the hits, admit the misses' captures and keep
their domains under budget.

The cache can never fail a job: an error before the denoise makes the job a miss that says why, an error
after it is logged and dropped.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Collection
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from sqlalchemy import select

from chorus.cache.embedder import MiniLMEmbedder
from chorus.cache.entries import write_entry
from chorus.cache.eviction import Evictor
from chorus.cache.index import CacheIndex, Match
from chorus.cache.local import EntryFetcher, LocalEntryCache
from chorus.cache.namespace import Namespace, cache_domain
from chorus.config import Settings
from chorus.db.models import Job, Tenant
from chorus.engine.capture import CaptureConfig, CapturedRun
from chorus.engine.denoise import GenerationRequest
from chorus.engine.plan import ReusePlan, ReusePolicy
from chorus.engine.prepare import prepare_reuse
from chorus.engine.region import RegionConfig
from chorus.engine.staged import ReuseSource
from chorus.engine.tgaa import TGAAConfig
from chorus.models.base import VideoModelAdapter
from chorus.storage import ObjectStore

log = logging.getLogger(__name__)


@dataclass
class JobReuse:
    """One job's way through the cache: its plan, and what admission or hit counting needs afterwards."""

    job: Job
    request: GenerationRequest
    plan: ReusePlan
    source: ReuseSource | None = None
    namespace: Namespace | None = None  # None: the cache is off for this job
    domain: str | None = None
    embedding: np.ndarray | None = None
    match: Match | None = None
    captured: CapturedRun | None = None  # a miss's trajectory, to admit once the job is delivered
    figures: dict[str, Any] = field(default_factory=dict)  # lookup/fetch timings for the metrics
    cache_on: bool = True  # False: CHORUS_CACHE_ENABLED or the job turned the cache off (no lookup to count)

    @property
    def admissible(self) -> bool:
        return self.namespace is not None and not self.plan.hit

    def miss(self, reason: str) -> None:
        """Compute in full; the nearest entry, if one was found, stays on record as the source that was not used."""
        found = str(self.match.entry.id) if self.match else None
        self.plan, self.source = ReusePlan(self.request.num_inference_steps, reason=reason, source_id=found), None

    def turn_off(self, why: str) -> None:
        self.cache_on = False
        self.miss(f"off: {why}")

    def metrics(self) -> dict[str, Any]:
        """The job's ``metrics.cache``: the plan, where its source came from, and what the cache cost."""
        found = self.match.entry if self.match else None
        return {
            **self.plan.to_dict(),
            "looked_up": self.cache_on,
            "source_job_id": str(found.source_job_id) if found and found.source_job_id else None,
            "lookup_path": self.match.path if self.match else None,
            **self.figures,
        }


def _seconds(since: float) -> float:
    return round(time.perf_counter() - since, 4)


class WorkerCache:
    """A worker process's handle on the cache: index, store, local LRU, evictor and the reuse configs."""

    def __init__(self, settings: Settings, store: ObjectStore) -> None:
        self.settings, self.store = settings, store
        self.index = CacheIndex(settings.database_url)
        self.fetcher = EntryFetcher(store, LocalEntryCache(settings.cache_local_bytes))
        self.evictor = Evictor(self.index.engine, store, settings.cache_budget_bytes)
        self.policy = ReusePolicy(
            min_similarity=settings.cache_min_similarity,
            full_similarity=settings.cache_full_similarity,
            stage1_share=settings.cache_stage1_share,
            stage2_share=settings.cache_stage2_share,
            min_repair_steps=settings.cache_min_repair_steps,
            seed_variant_share=settings.cache_seed_variant_share,
            replay_identical=settings.cache_replay_identical,
            max_region_fraction=settings.cache_max_region_fraction,
            min_edit_steps=settings.cache_min_edit_steps,
        )
        self.region = RegionConfig(threshold=settings.cache_region_threshold)
        self.tgaa = TGAAConfig(alpha=settings.cache_tgaa_alpha)
        self.capture = CaptureConfig(
            latent_steps=_tuple(settings.cache_capture_latent_steps),
            map_steps=_tuple(settings.cache_capture_map_steps),
            map_layers=_tuple(settings.cache_capture_map_layers),
            map_stride=tuple(settings.cache_capture_map_stride),
        )

    @cached_property
    def embedder(self) -> MiniLMEmbedder:
        return MiniLMEmbedder(device=self.settings.device)

    def capture_for(self, reuses: list[JobReuse]) -> CaptureConfig | None:
        """Capture only when some job's run will be admitted, and maps only where edits are reused
        (a batch shares one step count)."""
        if not (self.settings.cache_admit and any(r.admissible for r in reuses)):
            return None
        return self.policy.capture_for(self.capture, reuses[0].request.num_inference_steps)

    def prepare(self, adapter: VideoModelAdapter, jobs: list[Job], requests: list[GenerationRequest]) -> list[JobReuse]:
        """Plan each job of a batch; jobs whose cache is off, or whose lookup or fetch failed, are misses."""
        reuses = [
            JobReuse(job, request, ReusePlan(request.num_inference_steps)) for job, request in zip(jobs, requests)
        ]
        active = []
        for reuse in reuses:
            if not self.settings.cache_enabled:
                reuse.turn_off("CHORUS_CACHE_ENABLED is false")
            elif (reuse.job.input.get("cache") or {}).get("mode", "auto") == "off":
                reuse.turn_off("the job asked for cache mode off")
            else:
                active.append(reuse)
        if not active:
            return reuses
        try:
            self._key(adapter, active)
        except Exception as exc:
            log.warning("cache keys for batch %s failed; computing in full", jobs[0].id, exc_info=True)
            for reuse in active:
                reuse.namespace = None
                reuse.miss(f"miss: cache unavailable ({type(exc).__name__})")
            return reuses
        fetches = [(reuse, fetch) for reuse in active if (fetch := self._look_up(reuse)) is not None]
        for reuse, (future, started) in fetches:
            self._plan(adapter, reuse, future, started)
        return reuses

    def _key(self, adapter: VideoModelAdapter, active: list[JobReuse]) -> None:
        """Namespace, domain and prompt embedding of each job (one embedding call, one tenant query)."""
        tenants = {reuse.job.tenant_id for reuse in active}
        with self.index.engine.connect() as conn:
            shared = dict(conn.execute(select(Tenant.id, Tenant.cache_shared).where(Tenant.id.in_(tenants))).all())
        embeddings = self.embedder.embed([reuse.request.prompt for reuse in active])
        for reuse, embedding in zip(active, embeddings):
            request = reuse.request
            reuse.namespace = Namespace.for_request(
                adapter.card,
                steps=request.num_inference_steps,
                height=request.height,
                width=request.width,
                frames=request.num_frames,
                guidance_scale=request.guidance_scale,
                embedder=self.embedder.name,
            )
            reuse.domain = cache_domain(reuse.job.tenant_id, shared[reuse.job.tenant_id])
            reuse.embedding = embedding

    def _look_up(self, reuse: JobReuse) -> tuple[Future[CapturedRun], float] | None:
        """The nearest entry; its fetch starts at once (the future, and when). None: a miss, already planned."""
        tick = time.perf_counter()
        try:
            reuse.match = self.index.lookup(reuse.embedding, namespace=reuse.namespace.key, domain=reuse.domain)
        except Exception as exc:
            log.warning("cache lookup for job %s failed; computing in full", reuse.job.id, exc_info=True)
            reuse.miss(f"miss: lookup failed ({type(exc).__name__})")
            return None
        reuse.figures["lookup_seconds"] = _seconds(tick)
        if reuse.match is None:
            reuse.miss("miss: no entry")
            return None
        reuse.figures["fetched_from"] = "local" if reuse.match.entry.id in self.fetcher.local else "store"
        return self.fetcher.prefetch(reuse.match.entry), time.perf_counter()

    def _plan(self, adapter: VideoModelAdapter, reuse: JobReuse, future: Future[CapturedRun], started: float) -> None:
        entry = reuse.match.entry
        try:
            run = future.result()
        except Exception as exc:  # EntryUnavailable: evicted, objects gone, store down, corrupt
            log.warning("cache entry %s unavailable for job %s (%s); computing in full", entry.id, reuse.job.id, exc)
            reuse.miss(f"miss: entry unavailable ({type(exc).__name__})")
            return
        finally:
            reuse.figures["fetch_seconds"] = _seconds(started)  # until the tensors were here, overlap included
        try:
            reuse.plan, reuse.source = prepare_reuse(
                adapter,
                reuse.request,
                run,
                reuse.match.similarity,
                policy=self.policy,
                region=self.region,
                source_id=str(entry.id),
            )
        except Exception as exc:
            log.warning("reuse planning for job %s failed; computing in full", reuse.job.id, exc_info=True)
            reuse.miss(f"miss: planning failed ({type(exc).__name__})")

    def settle(self, reuses: list[JobReuse], delivered: Collection[uuid.UUID]) -> None:
        """After delivery: count delivered hits, admit delivered misses' captures, enforce their domains."""
        domains, admitted = set(), 0
        for reuse in reuses:
            if reuse.job.id not in delivered or reuse.namespace is None:
                continue
            try:
                if reuse.plan.hit:
                    self.index.record_hit(reuse.match.entry.id, reuse.plan.steps_saved)
                elif reuse.captured is not None:
                    self._admit(reuse)
                    domains.add(reuse.domain)
                    admitted += 1
            except Exception:
                log.warning("cache bookkeeping for job %s failed", reuse.job.id, exc_info=True)
        for domain in domains:
            try:
                self.evictor.enforce(domain)
            except Exception:
                log.warning("cache eviction in domain %s failed", domain, exc_info=True)
        # The batch's last cache write: tests (and operators) can wait for this line.
        log.info("cache settled for batch %s (%d admitted)", reuses[0].job.id, admitted)

    def _admit(self, reuse: JobReuse) -> None:
        run = reuse.captured
        stored = write_entry(self.store, reuse.domain, reuse.namespace.key, run)
        entry = self.index.admit(
            self.store,
            stored,
            namespace=reuse.namespace,
            domain=reuse.domain,
            embedding=reuse.embedding,
            prompt=run.prompt,
            token_ids=run.token_ids,
            seed=run.seed,
            ttl_s=self.settings.cache_ttl_s,
            source_job_id=reuse.job.id,
        )
        log.info("job %s admitted to the cache as entry %s (%d bytes)", reuse.job.id, entry.id, entry.bytes)


def _tuple(values: list[int] | None) -> tuple[int, ...] | None:
    return None if values is None else tuple(values)
