"""The PyTorch adapter tests; none is collected when torch is not installed."""

import importlib.util

import pytest

TORCH_INSTALLED = importlib.util.find_spec("torch") is not None
if not TORCH_INSTALLED:
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(autouse=True)
def _seeded_torch():
    """A fixed torch seed per test (tests draw their data from NumPy's ``rng``)."""
    if TORCH_INSTALLED:
        import torch

        torch.manual_seed(0)
    yield
