"""The benchmark's traces (seeded, edits change one thing)."""

from chorus.bench.workload import load_trace, make_trace, save_trace
from chorus.data.captions import parse_caption


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
