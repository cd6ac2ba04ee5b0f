"""The benchmark's traces (seeded, every edit kind present, an edit changes one attribute and its word)."""

from chorus.bench.workload import EDITS, NEW, SEED_VARIANT, load_trace, make_trace, prefix, save_trace, sources
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
    assert {i.kind for i in trace if i.phase == "warm"} == {*EDITS, SEED_VARIANT, NEW}
    for item in trace:
        assert parse_caption(item.prompt) == item.spec and not item.spec.held_out
        assert named_attributes(item.prompt) == set(ATTRIBUTES)
        if item.kind == NEW:
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


def test_repeat_stream_repeats_prompts_with_new_seeds():
    trace = make_trace("repeat", 20, 4)
    assert len({i.prompt for i in trace}) == 2 and len({i.seed for i in trace}) == 20
    assert [i.kind for i in trace].count(NEW) == 2
    assert all(trace[i.parent].prompt == i.prompt for i in trace if i.kind == SEED_VARIANT)


def test_unrelated_stream_names_every_attribute():
    for item in make_trace("unrelated", 30, 5):
        assert named_attributes(item.prompt) == set(ATTRIBUTES) and parse_caption(item.prompt) == item.spec


def test_a_prefix_keeps_kinds_and_sources_and_moves_the_warm_up():
    trace = make_trace("similar", 80, 20)
    short = prefix(trace, 40, 10)
    assert [i.kind for i in short] == [i.kind for i in trace[:40]]
    assert sources(short) == {i: s for i, s in sources(trace).items() if i < 40}
    assert [i.phase for i in short].count("cold") == 10
