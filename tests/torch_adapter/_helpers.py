"""Shared cases of the PyTorch adapter tests; importing it skips the importing test module
when torch is not installed.

``CASES`` lists every operator with each combination of its registry grid;
:func:`inputs` makes valid float NumPy inputs for a case and :func:`structured` the function
of unstructured tensors that gradcheck can perturb freely (symmetric arguments through
``sym``, triangular ones masked), generically from the operator specs.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import xlinalg
import xlinalg.torch as xt
from xlinalg.core.operator import get
from xlinalg.core.samples import case_id, draw


def _cases():
    out = []
    for name in xlinalg.OPERATORS:
        op = get(name)
        for params in op.param_grid():
            out.append(pytest.param(name, params, id=case_id(op, params)))
    return out


#: Every operator with every combination of its registry grid.
CASES = _cases()
#: One case per operator: its first grid combination.
OPS = [pytest.param(name, get(name).param_grid()[0], id=name) for name in xlinalg.OPERATORS]


def inputs(name, params, rng, *, batch=(2,), n=3, dtype="float64"):
    """Valid NumPy inputs of ``name`` with ``params`` from the operator's registry entry:
    well conditioned, separated eigenvalues, full rank; symmetric arguments symmetric (tests
    perturb them through ``sym``), triangular ones zero outside their triangle."""
    drawn = draw(get(name), rng, [batch], n, {**get(name).params, **params}, garbage=False)
    return tuple(np.ascontiguousarray(x).astype(dtype) for x in drawn[0])


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


def without_node(monkeypatch):
    """Eager calls through the ``autograd.Function``: neither the C++ node nor its remembered
    calls (:func:`xlinalg.lapack.torch_node.fast_path`) take them."""
    from xlinalg.adapters import torch as torch_adapter
    from xlinalg.lapack import torch_node

    monkeypatch.setattr(torch_adapter, "_node_call", lambda *args: None)
    monkeypatch.setattr(torch_node, "fast_path", lambda: None)
