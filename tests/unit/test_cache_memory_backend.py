"""The in-memory cache backend: the Postgres backend's rules (namespace and domain, nearest wins, byte
budget per domain with LCBFU eviction) in one process."""

import numpy as np
import torch

from chorus.cache.backends.memory import MemoryBackend
from chorus.engine.capture import CapturedRun
from chorus.namespace import Namespace

NS = Namespace("m", "r", "s", 4, 32, 32, 8, 3.0, "e")
OTHER_NS = Namespace("m", "r", "s", 8, 32, 32, 8, 3.0, "e")


def _run(nbytes: int) -> CapturedRun:
    latent = torch.zeros(nbytes // 2, dtype=torch.float16)
    return CapturedRun("p", "", 0, 4, 3.0, [], (1, 1, 1), (1, 1, 1), latents={1: latent})


def _unit(*v: float) -> np.ndarray:
    x = np.array(v, dtype=np.float32)
    return x / np.linalg.norm(x)


def test_matches_within_namespace_and_domain_only():
    backend = MemoryBackend()
    backend.admit(_run(100), _unit(1, 0), NS, "a", "job-1")
    backend.admit(_run(100), _unit(1, 1), NS, "b", None)
    backend.admit(_run(100), _unit(0.9, 0.1), OTHER_NS, "a", None)
    [found] = backend.nearest(_unit(1, 0.2), NS, "a", 4)
    assert found.source_job_id == "job-1" and 0.97 < found.similarity < 0.99 and found.local
    assert found.ref.domain == "a" and found.ref.namespace == NS.key
    assert backend.fetch(found).result() is found.ref.run
    assert backend.nearest(_unit(1, 0), NS, "c", 4) == []
    assert backend.nbytes == 300


def test_nearest_lists_up_to_k_entries_nearest_first():
    backend = MemoryBackend()
    for i, angle in enumerate((0.0, 0.3, 0.6, 0.9)):
        backend.admit(_run(10), _unit(np.cos(angle), np.sin(angle)), NS, "a", f"job-{i}")
    found = backend.nearest(_unit(1, 0), NS, "a", 3)
    assert [f.source_job_id for f in found] == ["job-0", "job-1", "job-2"]
    assert [f.similarity for f in found] == sorted((f.similarity for f in found), reverse=True)


def test_tenants_are_their_own_domain_unless_shared():
    backend = MemoryBackend(shared_tenants={"t2"})
    assert backend.domains({"t1", "t2"}) == {"t1": "t1", "t2": "shared"}


def test_budget_evicts_the_least_beneficial_of_the_domain():
    backend = MemoryBackend(budget_bytes=250)
    backend.admit(_run(100), _unit(1, 0), NS, "a", None)
    backend.admit(_run(100), _unit(0, 1), NS, "a", None)
    backend.admit(_run(200), _unit(0, 1), NS, "b", None)  # another domain: its own budget
    useful, _ = backend.nearest(_unit(1, 0), NS, "a", 2)  # nearest first
    backend.record_hit(useful, steps_saved=2.0)
    backend.admit(_run(100), _unit(1, 1), NS, "a", None)
    backend.enforce("a")  # over budget: the unused older entry goes
    assert backend.evictions == 1 and int(useful.entry_id) in backend.entries
    assert sum(e.nbytes for e in backend.entries.values() if e.domain == "a") == 200
    backend.admit(_run(300), _unit(1, 1), NS, "a", None)  # larger than the whole budget: not admitted
    assert backend.nbytes == 400
