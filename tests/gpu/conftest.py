"""Tests here need CUDA: they are skipped on machines without it (scripts/gpu_check.sh runs them on a GPU)."""

import pytest
import torch


def pytest_collection_modifyitems(items):
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip)
