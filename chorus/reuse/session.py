"""One batch's way through reuse: the code path the worker and the benchmark both run.

    cache = ReuseCache.for_service(settings, store)   # or ReuseCache(backend, embedder, config)
    session = cache.open(adapter, [CacheJob(key, request, tenant), ...])   # key, embed, look up, fetch, plan
    frames = session.denoise(on_step=..., stats=...)                        # the staged denoise, each by its plan
    ...deliver the videos...
    session.settle(delivered_keys)                                          # record hits, admit misses, evict
    session.settle_later(delivered_keys)                                    # or that, on the cache's thread (worker)

``open`` embeds the batch's prompts in one call and looks each job up: first by its request fingerprint
(an exact repeat, found by key and never by prompt similarity, so same-prompt entries of other seeds cannot
hide it), then by nearest prompt in its namespace and domain: of the ``lookup_candidates`` nearest, the one
whose prompt's words admit the largest plan (``ReusePolicy.steps_from_words``). An exact repeat is served
the stored video (a copy in the store under the job's own key: no transformer step, no decode, no encode); if
that video is gone, its final latent is decoded; if that is gone too, it runs in full. A match no plan can
read (too far, or an edit at a step count with no edit plan) is a miss told from the index row alone, never
fetched; any other match's fetch starts at once (the backend overlaps it with the remaining lookups), then each job is
planned from its fetched source.
``settle`` runs only for jobs that were delivered, so the cache's bookkeeping never delays or fails a delivery.
The cache's own thread (``ReuseCache.in_order``) runs a batch's settle and then the next batch's domain and
exact lookups, in that order, while the next batch's prompts embed on the caller's thread: the worker's next
batch overlaps the last one's admission and finds what it admitted.

The cache can never fail a job: an error before the denoise makes the job a miss that says why; an error
in ``settle`` is logged and dropped. Each job's ``CacheJob`` is the one record of what happened to it:
its plan, its source, its role, its timings; ``metrics()`` is its ``metrics.cache``.
"""

from __future__ import annotations

import enum
import functools
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch

from chorus.cache.backends.base import CacheBackend, Found
from chorus.cache.embedder import MiniLMEmbedder, PromptEmbedder
from chorus.cache.entries import fit_stage2
from chorus.engine.capture import CaptureConfig, CapturedRun
from chorus.engine.denoise import Canceled, DenoiseStats, GenerationRequest, StepCallback
from chorus.engine.sampling import sigma_grid
from chorus.engine.staged import ReuseSource, generate_with_reuse
from chorus.engine.tgaa import TGAAConfig
from chorus.models.base import VideoModelAdapter
from chorus.namespace import SHARED_DOMAIN, Namespace
from chorus.reuse.calibration import Calibration, card_calibration
from chorus.reuse.edit_kind import EditKindClassifier
from chorus.reuse.plan import ReusePlan, ReusePolicy
from chorus.reuse.prepare import prepare_reuse
from chorus.reuse.prompt_diff import DiffKind
from chorus.reuse.region import RegionConfig
from chorus.storage import ObjectNotFound

if TYPE_CHECKING:
    from chorus.config import Settings
    from chorus.storage import ObjectStore

log = logging.getLogger(__name__)
T = TypeVar("T")

# What a caller of the session needs from the engine, so that callers (the worker) import no engine module.
__all__ = [
    "CacheJob",
    "CacheSession",
    "Canceled",
    "DenoiseStats",
    "GenerationRequest",
    "ReuseCache",
    "ReuseConfig",
    "Role",
]


class Role(enum.StrEnum):
    """What the cache was to one job."""

    off = "off"  # the cache was not consulted (turned off for the deployment or by the job)
    miss = "miss"  # looked up, computed in full (and admitted once delivered)
    hit = "hit"  # reused a source's trajectory


@dataclass(frozen=True)
class ReuseConfig:
    """How the cache reuses and what it stores: the policy and the engine's reuse configs. These defaults
    are the service's and the library's alike; a ``CHORUS_CACHE_*`` setting overrides only its own field."""

    enabled: bool = True
    admit: bool = True
    policy: ReusePolicy = field(default_factory=ReusePolicy)
    region: RegionConfig = field(default_factory=RegionConfig)
    tgaa: TGAAConfig = field(default_factory=TGAAConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    context_max_mb: float = 64.0  # Stage 2's context per entry: the finest pooling that fits
    lookup_candidates: int = 4  # nearest entries weighed; the one whose words admit the largest plan is fetched

    @classmethod
    def from_settings(cls, settings: Settings) -> ReuseConfig:
        """The defaults, with each setting an operator set in place of its field."""
        config, own, parts = cls(), {}, defaultdict(dict)
        for name in settings.model_fields_set & SETTINGS.keys():
            part, name_in_part = SETTINGS[name]
            value = getattr(settings, name)
            value = tuple(value) if isinstance(value, list) else value
            if name_in_part is None:
                own[part] = value
            else:
                parts[part][name_in_part] = value
        return replace(config, **own, **{part: replace(getattr(config, part), **v) for part, v in parts.items()})

    @classmethod
    def default_of(cls, setting: str) -> Any:
        """What ``setting`` is when no operator sets it (the configuration table shows it)."""
        part, name_in_part = SETTINGS[setting]
        value = getattr(cls(), part)
        return value if name_in_part is None else getattr(value, name_in_part)


# Each CHORUS_CACHE_* setting of reuse: the ReuseConfig field it overrides, and the field inside that part.
SETTINGS: dict[str, tuple[str, str | None]] = {
    "cache_enabled": ("enabled", None),
    "cache_admit": ("admit", None),
    "cache_context_max_mb": ("context_max_mb", None),
    "cache_lookup_candidates": ("lookup_candidates", None),
    **{
        f"cache_{name}": ("policy", name)
        for name in (
            "min_similarity",
            "full_similarity",
            "stage1_sigma",
            "stage2_sigma",
            "min_repair_steps",
            "seed_variant_sigma",
            "replay_identical",
            "max_region_fraction",
            "min_edit_steps",
        )
    },
    "cache_region_threshold": ("region", "threshold"),
    "cache_tgaa_alpha": ("tgaa", "alpha"),
    **{
        f"cache_capture_{name}": ("capture", name) for name in ("latent_steps", "map_steps", "map_layers", "map_stride")
    },
}


@dataclass
class CacheJob:
    """One job's way through the cache. The caller fills the first four fields; the session the rest."""

    key: str  # the job's id: names the source of an admitted run (the in-memory backend takes any string)
    request: GenerationRequest
    tenant: str
    off_reason: str | None = None  # set: the cache is off for this job, and why
    remix_of: str | None = None  # a job of the same tenant whose run to reuse, instead of the nearest entry
    fingerprint: str | None = None  # chorus.fingerprint of the request: its exact key (None: no exact reuse)
    video_key: str | None = None  # where the job's video goes: an exact repeat's copy, an admitted run's video
    plan: ReusePlan | None = None
    source: ReuseSource | None = None
    namespace: Namespace | None = None  # None once the cache could not key the job
    domain: str | None = None
    embedding: np.ndarray | None = None
    found: Found | None = None  # the nearest entry, used or not
    captured: CapturedRun | None = None  # a miss's trajectory, admitted once the job is delivered
    exact: str | None = None  # an exact repeat served as: "video" (the stored video copied), "latent" (decoded)
    video_bytes: int | None = None  # the size of the copied video, when exact == "video"
    edit_kinds: frozenset[str] | None = None  # what an edit from its source changes (chorus.reuse.edit_kind)
    timings: dict[str, float] = field(default_factory=dict)  # seconds: lookup, fetch (overlap included)

    def __post_init__(self) -> None:
        if self.plan is None:
            self.plan = ReusePlan(self.request.num_inference_steps)

    @property
    def role(self) -> Role:
        if self.off_reason is not None:
            return Role.off
        return Role.hit if self.plan.hit else Role.miss

    @property
    def admissible(self) -> bool:
        return self.namespace is not None and self.role is Role.miss

    def miss(self, reason: str) -> None:
        """Compute in full; the nearest entry, if one was found, stays on record as the source not used."""
        found = self.found.entry_id if self.found else None
        self.plan, self.source = ReusePlan(self.request.num_inference_steps, reason=reason, source_id=found), None

    def turn_off(self, why: str) -> None:
        self.off_reason = why
        self.miss(f"off: {why}")

    def metrics(self) -> dict[str, Any]:
        """The job's ``metrics.cache``: the plan, where its source came from, and what the cache cost.

        A source from the opted-in shared pool may be another tenant's: it is reported as "shared", with
        nothing that identifies it or its prompt (no entry or job id, no source words or tokens, no
        similarity), since approximate caches leak prompts through exactly such reports."""
        found = self.found
        figures = {f"{name}_seconds": round(seconds, 4) for name, seconds in self.timings.items()}
        if found is not None:
            figures["fetched_from"] = "local" if found.local else "store"
        metrics = {
            **self.plan.to_dict(),
            "role": str(self.role),
            "exact": self.exact,
            "looked_up": self.role is not Role.off,
            "source_job_id": found.source_job_id if found else None,
            "lookup_path": found.path if found else None,
            "edit_kinds": sorted(self.edit_kinds) if self.edit_kinds is not None else None,
            **figures,
        }
        if found is not None and self.domain == SHARED_DOMAIN:
            # The kinds say what the source's words were about: as telling as the similarity.
            metrics |= {"source_id": None, "source_job_id": "shared", "similarity": None, "edit_kinds": None}
            if metrics["diff"] is not None:
                metrics["diff"] |= {"source_words": None, "source_tokens": None}
        return metrics


class ReuseCache:
    """A process's handle on the cache: a backend, the key embedder and the reuse config."""

    def __init__(self, backend: CacheBackend, embedder: PromptEmbedder, config: ReuseConfig | None = None) -> None:
        self.backend, self.embedder, self.config = backend, embedder, config or ReuseConfig()
        # An edit's kinds choose its calibrated plan and are named in metrics.cache.
        self.edit_kinds = EditKindClassifier(embedder)
        # The cache's own thread, one task at a time in order: a batch's settle, then the next batch's
        # lookups by key, so a batch finds every entry its worker admitted before it.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cache")

    def in_order(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn`` on the cache's thread, after everything handed to it before."""
        return self._thread.submit(fn, *args)

    @classmethod
    def for_service(cls, settings: Settings, store: ObjectStore) -> ReuseCache:
        """The worker's cache: the Postgres/pgvector index and the object store, configured from settings."""
        from chorus.cache.backends.postgres import PostgresBackend  # the service's only: the bench runs without it

        backend = PostgresBackend.from_settings(settings, store)
        return cls(backend, MiniLMEmbedder(device=settings.device), ReuseConfig.from_settings(settings))

    def open(self, adapter: VideoModelAdapter, jobs: Sequence[CacheJob]) -> CacheSession:
        """Key, look up, fetch and plan each job of a same-shape batch."""
        session = CacheSession(self, adapter, list(jobs))
        session.prepare()
        return session


class CacheSession:
    """One batch: planned by ``ReuseCache.open``, then ``denoise``, then ``settle``."""

    def __init__(self, cache: ReuseCache, adapter: VideoModelAdapter, jobs: list[CacheJob]) -> None:
        self.cache, self.adapter, self.jobs = cache, adapter, jobs
        self.config = cache.config
        # The batch's own phases, seconds: "embed" (the cache keys' embedding call), "plan" (lookups,
        # fetches and planning), "settle" (hits, admissions, eviction).
        self.seconds: dict[str, float] = {}

    @functools.cached_property
    def calibration(self) -> Calibration | None:
        """The model's calibration where the policy serves by it; read once per batch, when first needed."""
        return card_calibration(self.adapter.card) if self.config.policy.calibrated else None

    def prepare(self) -> None:
        tick = time.perf_counter()
        try:
            self._prepare()
        finally:
            self.seconds["plan"] = time.perf_counter() - tick - self.seconds.get("embed", 0.0)

    def _prepare(self) -> None:
        active = []
        for job in self.jobs:
            if job.off_reason is not None:
                job.turn_off(job.off_reason)
            elif not self.config.enabled:
                job.turn_off("CHORUS_CACHE_ENABLED is false")
            else:
                active.append(job)
        if not active:
            return
        try:
            exact = self._key(active)
        except Exception as exc:
            log.warning("cache keys for batch %s failed; computing in full", active[0].key, exc_info=True)
            for job in active:
                job.namespace = None
                job.miss(f"miss: cache unavailable ({type(exc).__name__})")
            return
        fetches = [(job, fetch) for job in active if (fetch := self._look_up(job, exact.get(id(job)))) is not None]
        for job, (future, started) in fetches:
            self._plan(job, future, started)

    def _key(self, active: list[CacheJob]) -> dict[int, Found | Exception | None]:
        """Namespace, domain and prompt embedding of each job, and its exact match by ``id(job)``: the domains
        and the lookups by key need no embedding, so they run on the cache's thread while the prompts embed
        here (one embedding call, one domain query)."""
        by_key = self.cache.in_order(self._by_key, active)
        embedder, tick = self.cache.embedder, time.perf_counter()
        try:
            embeddings = embedder.embed([job.request.prompt for job in active])
            self.seconds["embed"] = time.perf_counter() - tick
        finally:
            exact = by_key.result()  # raises first where both failed: the database's error is the one to report
        for job, embedding in zip(active, embeddings):
            job.namespace = Namespace.for_request(self.adapter.card, job.request, embedder=embedder.name)
            job.embedding = embedding
        return exact

    def _by_key(self, active: list[CacheJob]) -> dict[int, Found | Exception | None]:
        """Each job's domain, and the exact repeat its fingerprint finds (or the lookup's error)."""
        backend = self.cache.backend
        domains = backend.domains({job.tenant for job in active})
        exact: dict[int, Found | Exception | None] = {}
        for job in active:
            job.domain = domains[job.tenant]
            if job.fingerprint is not None and job.remix_of is None:
                tick = time.perf_counter()
                try:
                    exact[id(job)] = backend.lookup_exact(job.fingerprint, job.domain)
                except Exception as exc:
                    exact[id(job)] = exc
                job.timings["lookup"] = time.perf_counter() - tick
        return exact

    def _look_up(self, job: CacheJob, exact: Found | Exception | None) -> tuple[Future[CapturedRun], float] | None:
        """The exact repeat (``exact``, looked up by key already), else the nearest entry; a fetch starts at
        once (the future, and when). None: no tensors needed (a miss, or an exact repeat served its stored
        video), already planned."""
        tick, backend = time.perf_counter() - job.timings.get("lookup", 0.0), self.cache.backend
        try:
            if isinstance(exact, Exception):
                raise exact
            if exact is not None:
                job.found = exact
                job.timings["lookup"] = time.perf_counter() - tick
                return self._exact(job)
            if job.remix_of is None:
                nearest = backend.nearest(job.embedding, job.namespace, job.domain, self.config.lookup_candidates)
                job.found = self._most_reusable(job, nearest)
            else:
                job.found = backend.lookup_source(job.embedding, job.remix_of, job.namespace, job.domain)
        except Exception as exc:
            log.warning("cache lookup for job %s failed; computing in full", job.key, exc_info=True)
            job.miss(f"miss: lookup failed ({type(exc).__name__})")
            return None
        job.timings["lookup"] = time.perf_counter() - tick
        if job.found is None:
            job.miss("miss: no entry" if job.remix_of is None else "miss: the remixed job's run is not in the cache")
            return None
        if job.remix_of is None and (reason := self._unreadable(job)) is not None:
            steps, found = job.request.num_inference_steps, job.found
            job.plan = ReusePlan(steps, reason=reason, similarity=found.similarity, source_id=found.entry_id)
            return None
        return self.cache.backend.fetch(job.found), time.perf_counter()

    def _most_reusable(self, job: CacheJob, nearest: list[Found]) -> Found | None:
        """Of the nearest entries, the one whose prompt admits the largest plan, told from the words alone
        (``ReusePolicy.steps_from_words``; ties: the nearer): the nearest by embedding often differs from the
        request in a word of a kind no plan covers where a farther one differs in one that has a plan."""
        if len(nearest) <= 1:
            return next(iter(nearest), None)
        steps, prompt, policy = job.request.num_inference_steps, job.request.prompt, self.config.policy
        sigmas = sigma_grid(self.adapter, steps)

        def reusable(found: Found) -> int:
            if found.prompt is None:
                return 0
            same = found.prompt == prompt
            try:
                kinds = None if same else self.cache.edit_kinds.classify(found.prompt, prompt)
            except Exception:
                log.warning("edit kinds for job %s failed; its nearest entry is taken", job.key, exc_info=True)
                return 0
            return policy.steps_from_words(found.similarity, same, kinds, steps, sigmas, self.calibration)

        return max(nearest, key=lambda found: (reusable(found), found.similarity))

    def _unreadable(self, job: CacheJob) -> str | None:
        """Why no plan can read the nearest entry, told before its tensors are fetched (None: fetch them): a
        prompt too far, or another prompt at a step count where no plan reuses an edit (at few steps, where
        most of the cache's lookups end so)."""
        policy, steps, found = self.config.policy, job.request.num_inference_steps, job.found
        if (miss := policy.dissimilar(found.similarity, steps)) is not None:
            return miss.reason
        if found.prompt not in (None, job.request.prompt) and not policy.plans_edits(steps, self.calibration):
            return f"miss: no plan reuses an edit at {steps} steps"
        return None

    def _exact(self, job: CacheJob) -> tuple[Future[CapturedRun], float] | None:
        """Serve an exact repeat its stored video; where that is gone, fetch the entry for its final latent."""
        steps = job.request.num_inference_steps
        if job.video_key is not None:
            try:
                job.video_bytes = self.cache.backend.copy_video(job.found, job.video_key)
            except ObjectNotFound:
                log.info("the video of entry %s is gone; job %s decodes its final latent", job.found.entry_id, job.key)
            except Exception as exc:
                log.warning("copying the video of entry %s for job %s failed (%s)", job.found.entry_id, job.key, exc)
            else:
                job.exact = "video"
                job.plan = ReusePlan(
                    steps,
                    stage1=steps,
                    reason="exact repeat: stored video",
                    similarity=1.0,
                    source_id=job.found.entry_id,
                )
                return None
        job.exact = "latent"
        return self.cache.backend.fetch(job.found), time.perf_counter()

    def _plan(self, job: CacheJob, future: Future[CapturedRun], started: float) -> None:
        try:
            run = future.result()
        except Exception as exc:  # EntryUnavailable: evicted, objects gone, store down, corrupt
            log.warning(
                "cache entry %s unavailable for job %s (%s); computing in full", job.found.entry_id, job.key, exc
            )
            job.miss(f"miss: entry unavailable ({type(exc).__name__})")
            job.exact = None
            return
        finally:
            job.timings["fetch"] = time.perf_counter() - started  # until the tensors were here, overlap included
        if job.exact:
            self._replay(job, run)
            return
        self._name_edit(job, run.prompt)
        try:
            # A remix names its source: the diff decides the plan, however far the prompts embed apart.
            similarity = 1.0 if job.remix_of else job.found.similarity
            job.plan, job.source = prepare_reuse(
                self.adapter,
                job.request,
                run,
                similarity,
                policy=self.config.policy,
                region=self.config.region,
                source_id=job.found.entry_id,
                calibration=self.calibration,
                edit_kinds=job.edit_kinds,
            )
            if job.remix_of:
                job.plan = replace(job.plan, reason=f"remix: {job.plan.reason}", similarity=job.found.similarity)
        except Exception as exc:
            log.warning("reuse planning for job %s failed; computing in full", job.key, exc_info=True)
            job.miss(f"miss: planning failed ({type(exc).__name__})")
            return
        if job.plan.diff is None or job.plan.diff.kind is not DiffKind.EDITED:
            job.edit_kinds = None  # not an edit: nothing to name

    def _name_edit(self, job: CacheJob, source_prompt: str) -> None:
        """The kinds of the change from the source's prompt, which pick an edit's calibrated plan; a failure
        leaves them unknown (a calibrated step count then misses)."""
        if source_prompt == job.request.prompt:
            return
        try:
            job.edit_kinds = frozenset(self.cache.edit_kinds.classify(source_prompt, job.request.prompt))
        except Exception:
            log.warning("edit kinds for job %s failed; reported as unknown", job.key, exc_info=True)

    @staticmethod
    def _replay(job: CacheJob, run: CapturedRun) -> None:
        """An exact repeat whose video is gone: decode the entry's final latent (no transformer step). The
        fingerprint already proved the inputs equal, so no diff or policy is consulted: never a seed variant."""
        steps = job.request.num_inference_steps
        if steps not in run.latents:
            job.exact = None
            job.miss("miss: an exact repeat whose entry kept neither its video nor its final latent")
            return
        reason, source_id = "exact repeat: final latent", job.found.entry_id
        job.plan = ReusePlan(steps, stage1=steps, reason=reason, similarity=1.0, source_id=source_id)
        job.source = ReuseSource(run, None)

    def capture(self) -> CaptureConfig | None:
        """Capture only when some job's run will be admitted, maps and context only where edits are reused
        (a batch shares one step count) by the policy or the model's calibration, the context pooled as
        finely as the entry budget allows."""
        if not (self.config.admit and any(job.admissible for job in self.jobs)):
            return None
        request = self.jobs[0].request
        steps = request.num_inference_steps
        sigmas = sigma_grid(self.adapter, steps)
        config = self.config.policy.capture_for(self.config.capture, steps, sigmas, self.calibration)
        if not config.map_steps and not config.context_steps:
            return config
        model = self.adapter.transformer.config
        width = model.num_attention_heads * model.attention_head_dim
        _, *latent = self.adapter.latent_shape(request.num_frames, request.height, request.width)
        grid = tuple(n // p for n, p in zip(latent, self.adapter.patch_size))
        return fit_stage2(model.num_layers, width, grid, config, self.config.context_max_mb * 2**20)

    def denoise(
        self, on_step: StepCallback | None = None, stats: DenoiseStats | None = None
    ) -> list[torch.Tensor | None]:
        """The staged denoise of the batch, each job by its plan: uint8 frames (F, H, W, 3) per job, None for
        a job already served its stored video (it takes no part in the forward)."""
        computed = [job for job in self.jobs if job.exact != "video"]
        frames: dict[int, torch.Tensor] = {}
        if computed:
            out = generate_with_reuse(
                self.adapter,
                [job.request for job in computed],
                [job.plan for job in computed],
                [job.source for job in computed],
                tgaa=self.config.tgaa,
                capture=self.capture(),
                on_step=on_step,
                stats=stats,
            )
            for job, row, captured in zip(computed, out.frames, out.captured):
                job.captured = captured if job.admissible else None
                frames[id(job)] = row
        return [frames.get(id(job)) for job in self.jobs]

    def settle_later(self, delivered: Collection[str]) -> Future[int]:
        """``settle`` on the cache's thread: the worker goes on to its next batch, whose lookups by key wait
        there for this settle (so they find what it admitted) while its prompts embed."""
        return self.cache.in_order(self.settle, delivered)

    def settle(self, delivered: Collection[str]) -> int:
        """After delivery: count delivered hits, admit delivered misses' captures, enforce their domains.
        Returns how many entries were admitted."""
        tick = time.perf_counter()
        try:
            return self._settle(delivered)
        finally:
            self.seconds["settle"] = time.perf_counter() - tick

    def _settle(self, delivered: Collection[str]) -> int:
        backend, domains, admitted = self.cache.backend, set(), 0
        for job in self.jobs:
            if job.key not in delivered or job.namespace is None:
                continue
            try:
                if job.role is Role.hit:
                    backend.record_hit(job.found, job.plan.steps_saved)
                elif job.captured is not None:
                    backend.admit(
                        job.captured, job.embedding, job.namespace, job.domain, job.key, job.fingerprint, job.video_key
                    )
                    domains.add(job.domain)
                    admitted += 1
            except Exception:
                log.warning("cache bookkeeping for job %s failed", job.key, exc_info=True)
        for domain in domains:
            try:
                backend.enforce(domain)
            except Exception:
                log.warning("cache eviction in domain %s failed", domain, exc_info=True)
        return admitted
