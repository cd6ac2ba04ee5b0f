"""The API and the CLI run in the torch-free API image: importing them must not pull the model stack in."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "diffusers", "transformers", "numpy", "scipy", "PIL")


@pytest.mark.parametrize(
    "statement",
    [
        "import api.app; api.app.create_app",  # the API must install and run without torch
        "import chorus.cli",  # ``chorus keys …`` runs in the API image
    ],
)
def test_imports_without_the_model_stack(statement):
    code = f"import sys; {statement}; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
