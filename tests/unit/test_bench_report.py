"""The bench report's labels: an ablation that cannot differ from what it ablates says so."""

from chorus.bench.report import _kind_table, _marked_same_plans, _system_label, targets


def test_a_tgaa_ablation_without_stage2_is_labelled_as_the_same_run():
    assert "same run as chorus" in _system_label({"system": "chorus+tgaa", "stage2_steps": 0})
    assert _system_label({"system": "chorus+tgaa", "stage2_steps": 3}) == "chorus+tgaa"
    assert _system_label({"system": "chorus", "stage2_steps": 0}) == "chorus"


def test_per_kind_rows_render_their_paired_intervals_in_points():
    interval = {"n": 40, "on": 0.75, "off": 0.8, "diff": -0.05, "low": -0.125, "high": 0.0}
    row = {"system": "chorus", "kind": "size", "n": 40, "sources": 12, "hit_rate": 0.5, "compute_ratio": 0.8}
    [_, _, line] = _kind_table([row | {"accuracy_all": interval, "accuracy_edited": None}])
    assert "| chorus | size | 40 | 12 | 50.0% | 0.80 | 75.0% / 80.0% | -5.0 [-12.5, +0.0] | – | – |" == line


def _result(compute: float, speedup: float, diff: float, mag_speedup: float) -> dict:
    """A fake result at 50 steps: Chorus, Chorus+MagCache and no cache rows and their paired intervals."""
    base = {"steps": 50, "stream": "similar", "phase": "warm", "batch_size": 1, "hit_rate": 0.6}
    interval = {"n": 300, "on": 0.9 + diff, "off": 0.9, "diff": diff, "low": diff - 0.02, "high": diff + 0.02}
    rows = [
        base | {"system": "chorus", "compute_ratio": compute, "speedup": speedup},
        base | {"system": "chorus+magcache", "compute_ratio": compute / 2, "speedup": mag_speedup},
    ]
    paired = [
        {"system": s, "steps": 50, "kind": "all", "stream": "similar", "batch_size": 1, "sources": 100}
        | {"n": 300, "accuracy_all": interval}
        for s in ("chorus", "chorus+magcache")
    ]
    return {"config": {"steps": [50]}, "rows": rows, "paired": paired}


def test_the_many_step_targets_need_compute_speed_and_accuracy_together():
    met = {target: ok for target, _, ok in targets(_result(0.45, 2.0, -0.005, 3.2))}
    assert met["Chorus at 50 steps (similar, warm): compute <= 0.5, >= 1.8x, all-correct within 1 point"]
    assert met["chorus+magcache at 50 steps >= 3x, within 1 point"]
    for missed in (_result(0.55, 2.0, 0.0, 3.2), _result(0.45, 1.7, 0.0, 3.2), _result(0.45, 2.0, -0.02, 3.2)):
        assert targets(missed)[0][2] is False
    assert targets(_result(0.45, 2.0, 0.0, 2.9))[1][2] is False


def test_an_ablation_whose_every_request_got_chorus_plan_says_it_is_the_same_run():
    def record(system: str, index: int, stage1: int) -> dict:
        where = {"steps": 16, "stream": "similar", "batch_size": 1}
        return {"system": system, "index": index, "reason": "r", "stage1": stage1, "stage2": 0} | where

    row = {"system": "chorus-nearest", "steps": 16, "stream": "similar", "batch_size": 1}
    same = {"rows": [row], "records": [record("chorus", 0, 3), record("chorus-nearest", 0, 3)]}
    [marked] = _marked_same_plans(same)["rows"]
    assert "same run" in _system_label(marked)
    other = {"rows": [row], "records": [record("chorus", 0, 3), record("chorus-nearest", 0, 0)]}
    [unmarked] = _marked_same_plans(other)["rows"]
    assert _system_label(unmarked) == "chorus-nearest"
