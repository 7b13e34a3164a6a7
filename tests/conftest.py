"""Shared fixtures: ``xp`` runs a test for every Array API library without autograd that is
installed (NumPy always, array-api-strict when present)."""

from __future__ import annotations

import numpy as np
import pytest


def _namespaces():
    out = [pytest.param("numpy", id="numpy")]
    try:
        import array_api_strict  # noqa: F401

        out.append(pytest.param("array_api_strict", id="array_api_strict"))
    except ImportError:
        out.append(pytest.param("array_api_strict", id="array_api_strict", marks=pytest.mark.skip("array-api-strict not installed")))
    return out


@pytest.fixture(params=_namespaces())
def xp(request):
    if request.param == "numpy":
        import array_api_compat.numpy as xp_numpy

        return xp_numpy
    import array_api_strict

    return array_api_strict


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def failing_compiler(tmp_path, monkeypatch):
    """A C++ compiler that fails (``CXX=/bin/false``) and an empty build cache
    (``XLINALG_CACHE_DIR``), for tests of the libraries built on first use; the layer's state is
    reset before the test and after it. Yields ``monkeypatch`` (the test sets the mode with it)."""
    from xlinalg import lapack

    monkeypatch.setenv("XLINALG_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", "/bin/false")
    lapack.reset()
    try:
        yield monkeypatch
    finally:
        monkeypatch.undo()
        lapack.reset()
