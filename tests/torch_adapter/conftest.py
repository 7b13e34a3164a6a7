"""The PyTorch adapter tests; every module skips itself when torch is not installed
(through ``_helpers``, which checks with ``find_spec``: with ``tests`` on ``sys.path`` this
directory is a namespace package named ``torch`` that a plain import would find)."""

import importlib.util

import pytest

_spec = importlib.util.find_spec("torch")
TORCH_INSTALLED = _spec is not None and _spec.origin is not None


@pytest.fixture(autouse=True)
def _seeded_torch():
    """A fixed torch seed per test (tests draw their data from NumPy's ``rng``)."""
    if TORCH_INSTALLED:
        import torch

        torch.manual_seed(0)
    yield
