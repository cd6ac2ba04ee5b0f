"""Per-kind rows: each system against no cache on the same requests of a trace."""

from chorus.bench.metrics import paired_rows
from chorus.bench.systems import Record
from chorus.bench.workload import EDITS, make_trace
from chorus.eval.checker import ATTRIBUTES


def _record(item, system: str, hit: bool, wrong: set[str]) -> Record:
    return Record(
        index=item.index,
        stream=item.stream,
        phase=item.phase,
        system=system,
        steps=4,
        batch_size=1,
        wall_share=0.1,
        seconds=0.1,
        forwards=2.0 if hit else 4.0,
        tokens=1.0,
        block_tokens=2.0 if hit else 4.0,
        hit=hit,
        reason="",
        stage1=0,
        stage2=0,
        region_fraction=None,
        similarity=None,
        cache_bytes=0,
        stage_seconds={},
        correct={a: a not in wrong for a in ATTRIBUTES},
    )


def test_per_kind_rows_pair_each_request_with_its_no_cache_run():
    trace = make_trace("similar", 120, 30)
    records = [_record(i, "no-cache", False, set()) for i in trace]
    # "chorus" hits every edit and gets its edited attribute wrong; everything else as no cache
    records += [_record(i, "chorus", bool(i.edit), {i.edit} if i.edit else set()) for i in trace]
    records += [_record(i, "fbc", False, set()) for i in trace]
    rows = {(r["system"], r["kind"]): r for r in paired_rows(records, {"similar": trace})}
    warm = [i for i in trace if i.phase == "warm"]
    edits = [i for i in warm if i.edit]

    assert {k for s, k in rows if s == "chorus"} == {"all", "hits", "seed variant", "exact repeat", "new", *EDITS}
    assert rows["chorus", "all"]["n"] == len(warm) and rows["chorus", "hits"]["n"] == len(edits)
    assert rows["chorus", "all"]["compute_ratio"] == (2 * len(edits) + 4 * (len(warm) - len(edits))) / (4 * len(warm))
    for kind in EDITS:
        row = rows["chorus", kind]
        assert row["hit_rate"] == 1 and row["compute_ratio"] == 0.5
        assert (row["accuracy_edited"]["on"], row["accuracy_edited"]["off"]) == (0.0, 1.0)
        assert row["accuracy_edited"]["high"] == -1.0
    assert rows["chorus", "seed variant"]["accuracy_edited"] is None
    for kind in ("color", "shape", "direction", "background"):
        assert rows["chorus", kind]["accuracy_all"]["diff"] == -1.0
    for kind in ("size", "speed"):  # not part of "all"
        assert rows["chorus", kind]["accuracy_all"]["diff"] == 0.0
    fbc = rows["fbc", "all"]["accuracy_all"]
    assert (fbc["diff"], fbc["low"], fbc["high"]) == (0.0, 0.0, 0.0) and ("fbc", "hits") not in rows
    assert not any(s == "no-cache" for s, _ in rows)
