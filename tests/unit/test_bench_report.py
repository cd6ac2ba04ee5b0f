"""The bench report's labels: an ablation that cannot differ from what it ablates says so."""

from chorus.bench.report import _kind_table, _system_label


def test_a_tgaa_ablation_without_stage2_is_labelled_as_the_same_run():
    assert "same run as chorus" in _system_label({"system": "chorus+tgaa", "stage2_steps": 0})
    assert _system_label({"system": "chorus+tgaa", "stage2_steps": 3}) == "chorus+tgaa"
    assert _system_label({"system": "chorus", "stage2_steps": 0}) == "chorus"


def test_per_kind_rows_render_their_paired_intervals_in_points():
    interval = {"n": 40, "on": 0.75, "off": 0.8, "diff": -0.05, "low": -0.125, "high": 0.0}
    row = {"system": "chorus", "kind": "size", "n": 40, "sources": 12, "hit_rate": 0.5, "compute_ratio": 0.8}
    [_, _, line] = _kind_table([row | {"accuracy_all": interval, "accuracy_edited": None}])
    assert "| chorus | size | 40 | 12 | 50.0% | 0.80 | 75.0% / 80.0% | -5.0 [-12.5, +0.0] | – | – |" == line
