"""The bench report's labels: an ablation that cannot differ from what it ablates says so."""

from chorus.bench.report import _system_label


def test_a_tgaa_ablation_without_stage2_is_labelled_as_the_same_run():
    assert "same run as chorus" in _system_label({"system": "chorus+tgaa", "stage2_steps": 0})
    assert _system_label({"system": "chorus+tgaa", "stage2_steps": 3}) == "chorus+tgaa"
    assert _system_label({"system": "chorus", "stage2_steps": 0}) == "chorus"
