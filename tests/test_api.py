"""The public API: import purity, signatures, aliases, vjp/jvp calling conventions."""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest

import xlinalg
from tests.cases import spd


def test_import_imports_no_framework():
    code = (
        "import sys, xlinalg, xlinalg.core, xlinalg.kernels, numpy as np\n"
        "xlinalg.potrf(np.eye(2)); xlinalg.vjp('syevd', np.eye(2))\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'jax', 'jaxlib', 'mxnet', 'cupy'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_operator_is_public_with_its_spec():
    assert set(xlinalg.OPERATORS) == {
        "gemm", "gemm2", "potrf", "potri", "potrs", "trsm", "trmm", "syrk", "sumlogdiag", "gelqf",
        "syevd", "extractdiag", "makediag", "extracttrian", "maketrian", "inverse", "det", "slogdet",
    }
    for name in xlinalg.OPERATORS:
        fn = getattr(xlinalg, name)
        assert fn.operator.name == name and fn.__name__ == name
        assert "JVP" in fn.__doc__ and "VJP" in fn.__doc__


def test_signatures_are_positional_arrays_and_keyword_parameters():
    sig = inspect.signature(xlinalg.trsm)
    kinds = {p.name: p.kind for p in sig.parameters.values()}
    assert kinds == {
        "A": inspect.Parameter.POSITIONAL_ONLY,
        "B": inspect.Parameter.POSITIONAL_ONLY,
        "transpose": inspect.Parameter.KEYWORD_ONLY,
        "rightside": inspect.Parameter.KEYWORD_ONLY,
        "lower": inspect.Parameter.KEYWORD_ONLY,
        "alpha": inspect.Parameter.KEYWORD_ONLY,
    }
    assert sig.parameters["lower"].default is True


def test_results_keep_the_library(xp, rng):
    a = xp.asarray(spd(rng, (2, 3, 3)))
    assert type(xlinalg.potrf(a)) is type(a)
    u, lam = xlinalg.syevd(a)
    assert type(u) is type(a) and type(lam) is type(a)


def test_aliases(xp, rng):
    a = spd(rng, (2, 4, 4))
    xa = xp.asarray(a)
    np.testing.assert_allclose(np.asarray(xlinalg.cholesky(xa, upper=True)), np.swapaxes(np.linalg.cholesky(a), -1, -2), rtol=1e-12)
    w, v = xlinalg.eigh(xa)
    np.testing.assert_allclose(np.asarray(v) @ (np.asarray(w)[..., None] * np.swapaxes(np.asarray(v), -1, -2)), a, atol=1e-12)
    np.testing.assert_allclose(np.asarray(xlinalg.inv(xa)), np.linalg.inv(a), rtol=1e-10)
    t = np.triu(a)
    b = rng.standard_normal((2, 3, 4))
    x = xlinalg.solve_triangular(xp.asarray(t), xp.asarray(b), upper=True, left=False)
    np.testing.assert_allclose(np.asarray(x) @ t, b, atol=1e-12)


def test_vjp_returns_outputs_and_pullback(rng):
    a = spd(rng, (3, 3))
    (u, lam), pullback = xlinalg.vjp(xlinalg.syevd, a)
    only_values = pullback((None, np.ones(3)))  # None: a zero cotangent
    np.testing.assert_allclose(only_values[0], np.eye(3), atol=1e-12)  # d tr(A) / dA = I
    assert isinstance(only_values, tuple) and len(only_values) == 1


def test_jvp_returns_outputs_and_tangents(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    out, tangent = xlinalg.jvp("gemm2", (a, b), (np.ones_like(a), None), alpha=2.0)
    np.testing.assert_allclose(out, 2 * a @ b, rtol=1e-14)
    np.testing.assert_allclose(tangent, 2 * np.ones_like(a) @ b, rtol=1e-14)


def test_linalg_error_is_a_value_error():
    assert issubclass(xlinalg.LinAlgError, ValueError)


def test_numpy_calls_import_no_adapter_when_frameworks_are_loaded():
    """With torch and JAX imported by someone else, a NumPy call still runs the core directly:
    no framework adapter is imported for it."""
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    code = (
        "import sys, numpy as np, torch, jax, xlinalg\n"
        "xlinalg.potrf(np.eye(3)); xlinalg.syevd(np.eye(2))\n"
        "loaded = [m for m in sys.modules if m.startswith('xlinalg.adapters.')]\n"
        "assert not loaded, loaded\n"
        "xlinalg.potrf(torch.eye(3))\n"
        "assert 'xlinalg.adapters.torch' in sys.modules and 'xlinalg.adapters.jax' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
