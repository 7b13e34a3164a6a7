"""Shared cases of the PyTorch adapter tests; importing it skips the importing test module
when torch is not installed.

``CASES`` lists every operator with each combination of its discrete parameters;
:func:`inputs` makes valid float NumPy inputs for a case and :func:`structured` the function
of unstructured tensors that gradcheck can perturb freely (symmetric arguments through
``sym``, triangular ones masked), generically from the operator specs.
"""

from __future__ import annotations

import importlib.util
import itertools

import numpy as np
import pytest

# ``find_spec`` rather than ``pytest.importorskip``: with ``tests`` on ``sys.path`` (pytest's
# ``pythonpath``) the directory ``tests/torch_adapter`` is a namespace package named ``torch``, which
# an import finds where torch is not installed.
_spec = importlib.util.find_spec("torch")
TORCH_INSTALLED = _spec is not None and _spec.origin is not None
if not TORCH_INSTALLED:
    pytest.skip("torch is not installed", allow_module_level=True)

import torch  # noqa: E402

import xlinalg  # noqa: E402
import xlinalg.torch as xt  # noqa: E402
from xlinalg.core.operator import get  # noqa: E402

#: The discrete parameters of each operator and the values combined in ``CASES``;
#: continuous ones (alpha, beta) get a fixed non-default value.
_GRID = {
    "gemm": {"transpose_a": (False, True), "transpose_b": (False, True)},
    "gemm2": {"transpose_a": (False, True), "transpose_b": (False, True)},
    "syrk": {"transpose": (False, True)},
    "trmm": {"transpose": (False, True), "rightside": (False, True), "lower": (True, False)},
    "trsm": {"transpose": (False, True), "rightside": (False, True), "lower": (True, False)},
    "potrf": {"lower": (True, False)},
    "potri": {"lower": (True, False)},
    "potrs": {"lower": (True, False)},
    "extractdiag": {"offset": (0, 1, -1)},
    "makediag": {"offset": (0, 1, -1)},
    "extracttrian": {"offset": (0, 1, -1), "lower": (True, False)},
    "maketrian": {"offset": (0, 1, -1), "lower": (True, False)},
}
_FIXED = {
    "gemm": {"alpha": 0.5, "beta": -2.0},
    "gemm2": {"alpha": 1.5},
    "syrk": {"alpha": 0.7},
    "trmm": {"alpha": 0.5},
    "trsm": {"alpha": -1.5},
}


def _cases():
    out = []
    for name in xlinalg.OPERATORS:
        grid = _GRID.get(name, {})
        for values in itertools.product(*grid.values()):
            params = dict(zip(grid, values), **_FIXED.get(name, {}))
            label = name + "".join(f"-{k}={v}" for k, v in zip(grid, values))
            out.append(pytest.param(name, params, id=label))
    return out


CASES = _cases()
#: One case per operator (its defaults plus the fixed continuous parameters).
OPS = [pytest.param(name, dict(_FIXED.get(name, {})), id=name) for name in xlinalg.OPERATORS]


def inputs(name, params, rng, *, batch=(2,), n=3, k=2, dtype="float64"):
    """Valid NumPy inputs of ``name`` with ``params``: well conditioned, separated
    eigenvalues, full rank; structured arguments are dense (the other triangle is noise)."""

    def mat(r, c):
        return rng.standard_normal((*batch, r, c))

    def square():
        return mat(n, n) + 3 * np.eye(n)

    def spd():
        a = mat(n, n)
        return a @ np.swapaxes(a, -1, -2) / n + np.eye(n)

    def separated():
        q, _ = np.linalg.qr(mat(n, n))
        lam = np.arange(1.0, n + 1) + 0.25 * rng.uniform(size=(*batch, n))
        a = (q * lam[..., None, :]) @ np.swapaxes(q, -1, -2)
        return (a + np.swapaxes(a, -1, -2)) / 2

    ta, tb = params.get("transpose_a", False), params.get("transpose_b", False)
    right = params.get("rightside", False)
    offset = params.get("offset", 0)
    table = {
        "gemm": lambda: (mat(k, n) if ta else mat(n, k), mat(2, k) if tb else mat(k, 2), mat(n, 2)),
        "gemm2": lambda: (mat(k, n) if ta else mat(n, k), mat(2, k) if tb else mat(k, 2)),
        "syrk": lambda: (mat(n, k),),
        "trmm": lambda: (square(), mat(k, n) if right else mat(n, k)),
        "trsm": lambda: (square(), mat(k, n) if right else mat(n, k)),
        "potrf": lambda: (spd(),),
        "potri": lambda: (square(),),
        "potrs": lambda: (square(), mat(n, k)),
        "sumlogdiag": lambda: (spd(),),
        "gelqf": lambda: (mat(n - 1, n),),
        "syevd": lambda: (separated(),),
        "extractdiag": lambda: (mat(n, n),),
        "makediag": lambda: (rng.standard_normal((*batch, n - abs(offset))),),
        "extracttrian": lambda: (mat(n, n),),
        "maketrian": lambda: (rng.standard_normal((*batch, (n - abs(offset)) * (n - abs(offset) + 1) // 2)),),
        "inverse": lambda: (square(),),
        "det": lambda: (square(),),
        "slogdet": lambda: (square(),),
    }
    return tuple(np.ascontiguousarray(x).astype(dtype) for x in table[name]())


def tensors(arrays, requires_grad=False):
    return tuple(torch.tensor(x, requires_grad=requires_grad) for x in arrays)


def structure(name, params):
    """``g(*raw) -> valid``: symmetric arguments through ``sym``, triangular ones masked to
    the triangle the operator reads, the others unchanged (from the operator spec)."""
    spec = get(name)
    lower = spec.lower(params)

    def g(*xs):
        out = []
        for x, arg in zip(xs, spec.args):
            if arg.structure == "symmetric":
                x = (x + x.mT) / 2
            elif arg.structure == "triangular":
                x = x.tril() if lower else x.triu()
            out.append(x)
        return tuple(out)

    return g


def structured(name, params):
    """``f(*raw) = xlinalg.torch.<name>(*structure(raw), **params)``, outputs as a tuple."""
    fn, g = getattr(xt, name), structure(name, params)

    def f(*xs):
        out = fn(*g(*xs), **params)
        return out if isinstance(out, tuple) else (out,)

    return f
