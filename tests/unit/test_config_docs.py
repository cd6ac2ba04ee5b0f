"""The README's configuration reference is generated from the Settings model and must stay in step with it."""

from __future__ import annotations

from chorus.config import Settings
from scripts.config_docs import README, render


def test_every_setting_says_what_it_does() -> None:
    undocumented = [name for name, field in Settings.model_fields.items() if not field.description]
    assert not undocumented, f"add a docstring under these fields in chorus/config.py: {undocumented}"


def test_readme_configuration_table_is_current() -> None:
    current = README.read_text()
    assert render(current) == current, "README.md is stale: run python scripts/config_docs.py"
