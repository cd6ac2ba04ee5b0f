"""The benchmark's traces (seeded, edits change one thing) and its in-memory source cache (namespace and
domain rules, byte budget with LCBFU eviction)."""

import numpy as np
import torch

from chorus.bench.memcache import MemoryCache
from chorus.bench.workload import load_trace, make_trace, save_trace
from chorus.data.captions import parse_caption
from chorus.engine.capture import CapturedRun


def test_traces_are_seeded_and_round_trip(tmp_path):
    trace = make_trace("similar", 30, 8, seed=3)
    assert trace == make_trace("similar", 30, 8, seed=3) != make_trace("similar", 30, 8, seed=4)
    assert [i.phase for i in trace].count("cold") == 8
    save_trace(tmp_path / "t.jsonl", trace)
    assert load_trace(tmp_path / "t.jsonl") == trace


def test_similar_stream_edits_change_exactly_what_they_say():
    trace = make_trace("similar", 60, 10)
    edits = [i for i in trace if i.edit]
    assert len(edits) > 20
    for item in edits:
        parent = trace[item.parent]
        assert parse_caption(item.prompt) == item.spec and not item.spec.held_out
        changed = [
            a for a in ("color", "shape", "direction", "background") if getattr(item.spec, a) != getattr(parent.spec, a)
        ]
        assert changed == ([] if item.edit == "adjective" else [item.edit])
        assert item.prompt != parent.prompt


def test_repeat_stream_repeats_prompts_with_new_seeds():
    trace = make_trace("repeat", 20, 4)
    assert len({i.prompt for i in trace}) == 2 and len({i.seed for i in trace}) == 20


def _run(nbytes: int) -> CapturedRun:
    latent = torch.zeros(nbytes // 2, dtype=torch.float16)
    return CapturedRun("p", "", 0, 4, 3.0, [], (1, 1, 1), (1, 1, 1), latents={1: latent})


def _unit(*v: float) -> np.ndarray:
    x = np.array(v, dtype=np.float32)
    return x / np.linalg.norm(x)


def test_memory_cache_matches_within_namespace_and_domain_only():
    cache = MemoryCache()
    cache.admit(_run(100), _unit(1, 0), "ns", "a")
    cache.admit(_run(100), _unit(1, 1), "ns", "b")
    cache.admit(_run(100), _unit(0.9, 0.1), "other", "a")
    entry, similarity = cache.lookup(_unit(1, 0.2), "ns", "a")
    assert entry.domain == "a" and entry.namespace == "ns" and 0.97 < similarity < 0.99
    assert cache.lookup(_unit(1, 0), "ns", "c") is None
    assert cache.nbytes == 300


def test_memory_cache_budget_evicts_the_least_beneficial():
    cache = MemoryCache(budget_bytes=250)
    cache.admit(_run(100), _unit(1, 0), "ns", "a")
    cache.admit(_run(100), _unit(0, 1), "ns", "a")
    useful = cache.lookup(_unit(1, 0), "ns", "a")[0]
    cache.record_hit(useful, steps_saved=2.0)
    cache.admit(_run(100), _unit(1, 1), "ns", "a")  # over budget: the unused older entry goes
    assert cache.nbytes == 200 and cache.evictions == 1 and useful.id in cache.entries
    cache.admit(_run(300), _unit(1, 1), "ns", "a")  # larger than the whole budget: not admitted
    assert cache.nbytes == 200
