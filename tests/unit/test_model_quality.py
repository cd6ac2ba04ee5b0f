"""The shipped model loads through the adapter and follows its prompts at 4 steps (issue 3's bar)."""

from __future__ import annotations

from chorus.config import get_settings
from chorus.eval.checker import confusions, read_clips, score
from chorus.eval.sample import draw_prompts, generate_clips, requests_for
from chorus.models.loader import load_adapter


def test_shipped_model_follows_held_in_prompts_at_4_steps() -> None:
    settings = get_settings()
    adapter = load_adapter(settings.default_model, settings.models_dir)
    prompts = draw_prompts(48, held_out=False, seed=0)
    clips = generate_clips(adapter, requests_for(adapter, prompts, steps=4, guidance=None), batch_size=len(prompts))
    specs = [p.spec for p in prompts]
    readings = read_clips(clips)
    result = score(readings, specs)
    report = f"{adapter.revision}: {result}; errors {confusions(readings, specs)}"
    assert result["color"] >= 0.9, report
    assert result["direction"] >= 0.9, report
    assert result["shape"] >= 0.8, report
