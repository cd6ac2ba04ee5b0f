"""``chorus bench --quick`` end to end on a tiny random Wan (the smallest setting): the report is produced
and well-formed. The figures themselves are not checked."""

import json
import math

from typer.testing import CliRunner

from chorus.bench.report import SYSTEM_ORDER
from chorus.bench.runner import MANY_STEPS
from chorus.cli import app
from tests.fixtures.random_wan import write_random_wan


def _finite(value) -> bool:
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return not isinstance(value, float) or math.isfinite(value)


def test_bench_quick_writes_a_well_formed_report(tmp_path):
    write_random_wan(tmp_path / "models" / "tiny")
    out, report = tmp_path / "bench", tmp_path / "BENCHMARKS.md"
    args = ["bench", "--quick", "--requests", "4", "--steps", "4,6", "--model", "tiny"]
    args += ["--models-dir", str(tmp_path / "models"), "--out-dir", str(out), "--report", str(report)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output

    data = json.loads((out / "results" / "quick.json").read_text())
    assert data["streams"] == ["similar", "seed-variants", "unrelated"]
    assert set(data["systems"]) == set(SYSTEM_ORDER)
    for stream in data["streams"]:
        assert (out / "traces" / f"quick-{stream}.jsonl").is_file()
        main = {r["system"] for r in data["rows"] if (r["stream"], r["steps"], r["batch_size"]) == (stream, 4, 1)}
        assert main == set(SYSTEM_ORDER), stream
    many = {r["system"] for r in data["rows"] if r["steps"] == 6}
    assert many == set(SYSTEM_ORDER)
    assert {r["system"] for r in data["rows"] if r["batch_size"] == 4} == {"no-cache", "nirvana-k50", "chorus"}
    for row in data["rows"]:
        assert row["n"] > 0 and row["throughput_rps"] > 0 and 0 <= row["hit_rate"] <= 1
        assert {"latency_p50_s", "latency_p99_s", "tokens_per_request", "accuracy", "psnr_db", "ssim"} <= row.keys()
    assert data["tuning"] and data["sweep"] and data["records"]
    kinds = {r["kind"] for r in data["paired"] if (r["system"], r["stream"]) == ("chorus", "similar")}
    assert "all" in kinds
    intervals = [r["accuracy_all"] for r in data["paired"]]
    assert all(i["low"] <= i["diff"] <= i["high"] for i in intervals)
    assert _finite(data)

    text = report.read_text()
    assert "## Per request kind, paired with no cache" in text and "Main comparison" in text
    assert all(f"| {name} |" in text for name in SYSTEM_ORDER)
    for png in (out / "results" / "plots").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list((out / "results" / "plots").glob("*.png"))) == 4  # speed/accuracy x2, hit rate, stages
    assert all(f"]({p.relative_to(tmp_path)})" in text for p in (out / "results" / "plots").glob("*.png"))


def test_bench_many_steps_runs_only_its_systems_on_the_similar_stream(tmp_path):
    """The many-step mode's smaller run: the main comparison's systems, no batched runs, no budget sweep, and
    only the caches those systems use are tuned."""
    write_random_wan(tmp_path / "models" / "tiny")
    out, report = tmp_path / "bench", tmp_path / "BENCHMARKS.md"
    args = ["bench", "--mode", "many-steps", "--requests", "4", "--steps", "6", "--model", "tiny"]
    args += ["--models-dir", str(tmp_path / "models"), "--out-dir", str(out), "--report", str(report)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output

    data = json.loads((out / "results" / "many-steps.json").read_text())
    assert data["streams"] == ["similar"]
    assert set(data["systems"]) == set(MANY_STEPS.systems)
    assert {r["batch_size"] for r in data["rows"]} == {1} and not data["sweep"]
    assert {row["kind"] for row in data["tuning"]} == {"mag"}
    text = report.read_text()
    assert "Chorus at 6 steps" not in text  # no target is set at 6 steps
    assert all(f"| {name} |" in text for name in MANY_STEPS.systems)
