"""The API must install and run without torch: importing it must not pull torch (or diffusers) in."""

import subprocess
import sys


def test_api_app_imports_without_torch():
    code = (
        "import sys, api.app; app = api.app.create_app; "
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'numpy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
