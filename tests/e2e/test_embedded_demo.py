"""``chorus demo`` as a user runs it: a fresh folder, no services, no CHORUS_* settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import imageio.v3 as iio

from tests.fixtures.client import default_video_shape


def test_chorus_demo_writes_an_mp4_and_prints_the_job() -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CHORUS_")}
    # Not under pytest's basetemp: concurrent pytest sessions reset its permissions, which the
    # unprivileged postgres user pgserver runs as (when we are root) needs to traverse.
    with tempfile.TemporaryDirectory(prefix="chorus-demo-") as folder:
        result = subprocess.run(
            [sys.executable, "-m", "chorus.cli", "demo", "a blue circle moving left", "--out", "clip.mp4"]
            + ["--seed", "3"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-4000:]
        job = json.loads(result.stdout)  # stdout is the job JSON only; progress goes to stderr
        assert job["status"] == "succeeded", job
        assert job["input"]["prompt"] == "a blue circle moving left" and job["input"]["seed"] == 3

        video = Path(folder) / "clip.mp4"
        assert video.stat().st_size == job["output"]["bytes"]
        assert iio.imread(video, plugin="FFMPEG").shape == (*default_video_shape(), 3)
        data = Path(folder) / "chorus-data"
        assert (data / "pg" / "PG_VERSION").is_file()
        assert not (data / "pg" / "postmaster.pid").exists()  # Postgres was stopped on the way out


def test_chorus_demo_fails_at_once_with_the_load_error_of_a_model_it_cannot_load() -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CHORUS_")}
    with tempfile.TemporaryDirectory(prefix="chorus-demo-") as folder:
        result = subprocess.run(
            [sys.executable, "-m", "chorus.cli", "demo", "a red square", "--model", "no-such-model"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert result.returncode == 2, result.stderr[-4000:]
    assert "the worker cannot serve: could not load model 'no-such-model'" in result.stderr, result.stderr[-4000:]
    assert "was not ready" not in result.stderr and result.stdout == ""
