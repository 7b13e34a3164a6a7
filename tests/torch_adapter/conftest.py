"""The PyTorch adapter tests; every module skips itself when torch is not installed (through
``_helpers``)."""

import importlib.util

import pytest

TORCH_INSTALLED = importlib.util.find_spec("torch") is not None


@pytest.fixture(autouse=True)
def _seeded_torch():
    """A fixed torch seed per test (tests draw their data from NumPy's ``rng``)."""
    if TORCH_INSTALLED:
        import torch

        torch.manual_seed(0)
    yield
