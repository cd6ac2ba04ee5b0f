"""The shipped model loads through the adapter and follows its prompts at 4 steps.

Two bars on one fixed prompt set (48 held-in prompts, seed 0):
- the figures its model card records (a regression guard: broken weights, a
  changed adapter or sampler fall below them);
- issue 3's acceptance bar, which the model has not reached yet: that test is a
  strict xfail, so it fails loudly the day a checkpoint passes and the marker
  must go.
"""

from __future__ import annotations

import pytest

from chorus.config import get_settings
from chorus.eval.sample import fixed_set_quality
from chorus.models.loader import load_adapter

ISSUE_BAR = {"color": 0.9, "direction": 0.9, "shape": 0.8}
TOLERANCE = 0.06  # numeric drift across CPUs flips a few borderline clips


@pytest.fixture(scope="module")
def measured() -> tuple[dict[str, float], dict, str]:
    settings = get_settings()
    adapter = load_adapter(settings.default_model, settings.models_dir)
    scores, errors = fixed_set_quality(adapter)
    return scores, adapter.card.extra["quality_48"], f"{adapter.revision}: errors {errors}"


def test_shipped_model_holds_the_figures_on_its_card(measured) -> None:
    result, card, report = measured
    for attribute, expected in card.items():
        assert result[attribute] >= expected - TOLERANCE, f"{attribute}: {result} vs card {card}; {report}"


@pytest.mark.xfail(strict=True, reason="issue 3: the model is still training and below the bar (see its model card)")
def test_shipped_model_reaches_the_issue_bar(measured) -> None:
    result, _, report = measured
    for attribute, bar in ISSUE_BAR.items():
        assert result[attribute] >= bar, f"{attribute}: {result}; {report}"
