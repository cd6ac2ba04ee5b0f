"""Loading a model is bounded by CHORUS_MODEL_LOAD_TIMEOUT_S; a failed load raises the loader's error."""

import time

import pytest

from chorus.config import get_settings
from chorus.models import loader
from chorus.models.loader import ModelLoadTimeout, load_adapter
from tests.fixtures.random_wan import write_random_wan


def with_timeout(monkeypatch, seconds: float) -> None:
    monkeypatch.setenv("CHORUS_MODEL_LOAD_TIMEOUT_S", str(seconds))
    get_settings.cache_clear()


@pytest.fixture
def models(tmp_path):
    write_random_wan(tmp_path / "tiny")
    load_adapter.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    load_adapter.cache_clear()


def test_a_load_past_the_timeout_fails(models, monkeypatch):
    with_timeout(monkeypatch, 0.2)
    monkeypatch.setattr(loader, "adapter_for", lambda *args: time.sleep(2))  # a hung disk, faked
    started = time.monotonic()
    with pytest.raises(ModelLoadTimeout):
        load_adapter("tiny", models)
    assert time.monotonic() - started < 1.5


def test_a_load_error_reaches_the_caller_and_a_good_load_returns_the_adapter(models, monkeypatch):
    with_timeout(monkeypatch, 120)
    assert load_adapter("tiny", models).model_id == "tiny"
    monkeypatch.setattr(loader, "adapter_for", lambda *args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        load_adapter("tiny", models, "cpu", "fp32")
