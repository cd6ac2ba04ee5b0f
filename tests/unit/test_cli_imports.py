"""``chorus keys …`` runs in the torch-free API image: loading the CLI must not pull in the model stack."""

import subprocess
import sys


def test_cli_imports_without_torch_numpy_scipy():
    code = (
        "import sys, chorus.cli; "
        "print(sorted(m for m in ('torch', 'numpy', 'scipy', 'PIL', 'diffusers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
