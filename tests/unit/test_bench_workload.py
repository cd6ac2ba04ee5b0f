"""The benchmark's traces (seeded, every edit kind present, an edit changes one attribute and its word)."""

import pytest

from chorus.bench.workload import (
    EDITS,
    EXACT_REPEAT,
    NEW,
    REPEAT_SHARE,
    SEED_VARIANT,
    STREAMS,
    load_trace,
    make_trace,
    prefix,
    save_trace,
    sources,
)
from chorus.data.captions import named_attributes, parse_caption
from chorus.data.shapes import ClipSpec
from chorus.eval.checker import ATTRIBUTES


def test_traces_are_seeded_and_round_trip(tmp_path):
    trace = make_trace("similar", 30, 8, seed=3)
    assert trace == make_trace("similar", 30, 8, seed=3) != make_trace("similar", 30, 8, seed=4)
    assert [i.phase for i in trace].count("cold") == 8
    save_trace(tmp_path / "t.jsonl", trace)
    assert load_trace(tmp_path / "t.jsonl") == trace


def test_similar_stream_has_every_edit_kind_each_changing_one_attribute_and_its_word():
    trace = make_trace("similar", 120, 30)
    assert set(EDITS) == set(ATTRIBUTES) == set(ClipSpec.__dataclass_fields__)
    assert {i.kind for i in trace if i.phase == "warm"} == {*EDITS, SEED_VARIANT, EXACT_REPEAT, NEW}
    for item in trace:
        assert parse_caption(item.prompt) == item.spec and not item.spec.held_out
        assert named_attributes(item.prompt) == set(ATTRIBUTES)
        if item.kind in (NEW, EXACT_REPEAT):
            continue
        parent = trace[item.parent]
        changed = [a for a in ATTRIBUTES if getattr(item.spec, a) != getattr(parent.spec, a)]
        words, parent_words = item.prompt.split(), parent.prompt.split()
        different = {w for w, p in zip(words, parent_words) if w != p}
        assert len(words) == len(parent_words)
        if item.kind == SEED_VARIANT:
            assert (changed, item.prompt) == ([], parent.prompt) and item.seed != parent.seed
        else:
            assert changed == [item.edit] and different == {getattr(item.spec, item.edit)}


def test_more_requests_mean_more_distinct_sources():
    def sources(n: int) -> int:
        return sum(i.kind == NEW for i in make_trace("similar", n, n // 4))

    assert sources(400) > 2 * sources(100)


def test_seed_variant_stream_repeats_prompts_with_new_seeds():
    trace = make_trace("seed-variants", 20, 4, repeat_share=0)
    assert len({i.prompt for i in trace}) == 2 and len({i.seed for i in trace}) == 20
    assert [i.kind for i in trace].count(NEW) == 2
    assert all(trace[i.parent].prompt == i.prompt for i in trace if i.kind == SEED_VARIANT)


@pytest.mark.parametrize("stream", STREAMS)
def test_every_stream_holds_exact_repeats_at_the_asked_share(stream):
    trace = make_trace(stream, 400, 100)
    repeats = [i for i in trace if i.kind == EXACT_REPEAT]
    assert abs(len(repeats) / len(trace) - REPEAT_SHARE) < 0.06
    for item in repeats:
        original = trace[item.parent]
        assert not original.exact and original.index < item.index
        assert (item.prompt, item.seed, item.spec) == (original.prompt, original.seed, original.spec)
    assert not any(i.kind == EXACT_REPEAT for i in make_trace(stream, 100, 25, repeat_share=0))


def test_repeats_leave_the_streams_own_requests_as_they_were():
    own = make_trace("similar", 80, 20, repeat_share=0)
    mixed = [i for i in make_trace("similar", 80, 20, repeat_share=0.25) if not i.exact]
    assert 40 < len(mixed) < 80
    assert [(i.prompt, i.seed, i.kind) for i in mixed] == [(i.prompt, i.seed, i.kind) for i in own[: len(mixed)]]
    position = {item.index: n for n, item in enumerate(mixed)}
    for item, before in zip(mixed, own):  # parents point at the same requests, wherever the repeats moved them
        assert (item.parent is None) == (before.parent is None)
        if item.parent is not None:
            assert position[item.parent] == before.parent


def test_unrelated_stream_names_every_attribute():
    for item in make_trace("unrelated", 30, 5):
        assert named_attributes(item.prompt) == set(ATTRIBUTES) and parse_caption(item.prompt) == item.spec


def test_a_prefix_keeps_kinds_and_sources_and_moves_the_warm_up():
    trace = make_trace("similar", 80, 20)
    short = prefix(trace, 40, 10)
    assert [i.kind for i in short] == [i.kind for i in trace[:40]]
    assert sources(short) == {i: s for i, s in sources(trace).items() if i < 40}
    assert [i.phase for i in short].count("cold") == 10
