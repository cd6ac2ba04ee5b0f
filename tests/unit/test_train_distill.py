"""Step distillation (chorus.train.distill): the teacher's grid inside the student's, and a resumable run
that writes a model folder the adapter loads. The teacher is a tiny random Wan, made here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from diffusers import WanTransformer3DModel

from chorus.models.catalog import find_model
from chorus.models.loader import load_adapter
from chorus.train.config import ArchConfig, TrainConfig
from chorus.train.distill import DistillConfig, distill, schedule, teacher_grid
from chorus.train.loop import model_card


def test_the_linear_grid_is_wans_and_every_step_moves() -> None:
    """LightX2V's 4-step Wan2.1 grid: s evenly on [1, 0) shifted by 5; no step that changes nothing."""
    sigmas = schedule(5.0, 4, "linear")
    assert torch.allclose(sigmas, torch.tensor([1.0, 0.9375, 0.8333, 0.625, 0.0]), atol=1e-4)
    assert float(schedule(2.0, 4, "default")[3]) < 0.01  # the default grid's last step starts at ~0.004


@pytest.mark.parametrize("grid", ["default", "linear"])
def test_each_student_step_is_covered_by_whole_teacher_steps(grid: str) -> None:
    student, teacher = schedule(2.0, 4, grid), schedule(2.0, 16, grid)
    covered = []
    for i in range(4):
        grid = teacher_grid(student, teacher, i)
        assert grid[0] == student[i] and grid[-1] == student[i + 1]
        assert torch.all(grid[1:] < grid[:-1])
        covered += grid[:-1].tolist()
    assert torch.allclose(torch.tensor(covered + [0.0]), teacher, atol=1e-5)  # every teacher step used once


@pytest.fixture
def tiny_teacher(tmp_path: Path) -> Path:
    arch = ArchConfig(num_attention_heads=2, attention_head_dim=8, ffn_dim=32, num_layers=1)
    torch.manual_seed(0)
    folder = tmp_path / "models" / "tiny"
    WanTransformer3DModel(**arch.wan_kwargs()).save_pretrained(folder / "transformer")
    card = model_card(TrainConfig(model_id="tiny"), step=7) | {"quality_48": {"all": 1.0}}
    (folder / "chorus_model.json").write_text(json.dumps(card))
    return folder


def test_a_short_run_resumes_and_writes_a_loadable_student(tiny_teacher: Path, tmp_path: Path) -> None:
    cfg = DistillConfig(batch_size=2, max_steps=3, checkpoint_every=2, threads=1)
    out = tmp_path / "run"
    assert distill(tiny_teacher, out, cfg, max_steps=2) == 2
    assert distill(tiny_teacher, out, cfg) == 3  # resumed from step 2

    checkpoint = out / "checkpoint"
    card = json.loads((checkpoint / "chorus_model.json").read_text())
    assert card["revision"] == "step-7-distill4-3" and "quality_48" not in card  # the teacher's figures dropped
    models = tmp_path / "installed"
    (models / "tiny").mkdir(parents=True)
    for name in ("transformer", "chorus_model.json"):
        (models / "tiny" / name).symlink_to(checkpoint / name)
    assert find_model("tiny", models) is not None
    student = load_adapter("tiny", models).transformer
    teacher = WanTransformer3DModel.from_pretrained(tiny_teacher / "transformer")
    moved = [not torch.equal(a, b) for a, b in zip(student.parameters(), teacher.parameters())]
    assert any(moved)  # it learned something (the EMA moved off the teacher)
