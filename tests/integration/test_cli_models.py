"""``chorus models add/list`` and ``chorus generate`` as a user runs them: the installed console script,
CHORUS_MODELS_DIR pointing at a fresh folder, a tiny random Wan2.1 folder."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chorus.engine.denoise import GenerationRequest
from tests.fixtures.wan_folder import wan_pipeline_frames, write_wan_folder

CHORUS = str(Path(sys.executable).with_name("chorus"))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    folder = write_wan_folder(root / "Wan2.1-tiny")
    environ = {**os.environ, "CHORUS_MODELS_DIR": str(root / "models")}
    added = chorus(environ, "models", "add", str(folder), "--id", "tiny", "--guidance", "4")
    assert added.returncode == 0 and "installed tiny" in added.stdout, added.stderr
    return folder, environ


def chorus(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHORUS, *args], env=env, capture_output=True, text=True, timeout=300)


def test_add_list_and_generate_frames_equal_to_wan_pipeline(env, tmp_path):
    folder, environ = env
    assert chorus(environ, "models", "list").stdout.split() == ["tiny"]
    out = tmp_path / "video.npy"
    args = ["--model", "tiny", "--prompt", "a red square moving right", "--negative-prompt", "low quality"]
    size = ["--seed", "4", "--steps", "3", "--frames", "9", "--height", "32", "--width", "48"]
    result = chorus(environ, "generate", *args, *size, "--out", str(out))
    assert result.returncode == 0, result.stderr
    frames = np.load(out)
    assert frames.dtype == np.uint8 and frames.shape == (9, 32, 48, 3)
    request = GenerationRequest("a red square moving right", "low quality", 9, 32, 48, 3, 4.0, 4)
    assert np.abs(frames - wan_pipeline_frames(folder, request)).max() <= 1.0
    mp4 = tmp_path / "video.mp4"
    assert chorus(environ, "generate", *args, *size, "--out", str(mp4)).returncode == 0
    assert mp4.read_bytes()[4:8] == b"ftyp"


@pytest.mark.parametrize(
    "args, message",
    [
        (["generate", "--model", "nope", "--prompt", "x", "--out", "v.npy"], "not installed"),
        (["generate", "--model", "tiny", "--prompt", "x", "--height", "40", "--out", "v.npy"], "invalid_height"),
        (["generate", "--model", "tiny", "--prompt", "x", "--frames", "8", "--out", "v.npy"], "invalid_num_frames"),
        (["generate", "--model", "tiny", "--prompt", "x", "--out", "v.gif"], ".mp4 or .npy"),
        (["models", "add", "/nonexistent"], "missing"),
        (["models", "add", ".", "--sigmas", "1,x"], "comma-separated"),
    ],
)
def test_bad_input_exits_2_with_a_message(env, args, message):
    _, environ = env
    result = chorus(environ, *args)
    assert result.returncode == 2 and message in result.stderr
