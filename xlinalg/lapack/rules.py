"""The compiled layer's operator rules on NumPy arrays.

``RULES[name]`` maps ``"forward"`` and ``"vjp"`` to functions over NumPy arrays of one float
dtype whose batch axes are already broadcast (:func:`xlinalg.core.apply.prepare`):

``forward(inputs, params, threads) -> (outputs, status)``
    the operator's outputs and an ``int32`` array of the batch shape, non-zero where the entry
    failed (its outputs are then entirely NaN). Only the named triangle of structured arguments
    is read.
``vjp(inputs, outputs, cotangents, params, threads) -> grads``
    the input cotangents, already projected onto each argument's structure (symmetric, or
    masked to the named triangle), batch axes not summed.

Every function returns ``None`` for a call it does not take (then the pure rules run).
"""

from __future__ import annotations

import numpy as np

from . import library


def _c(x):
    return np.ascontiguousarray(x)


def _like(g, y):
    """The cotangent ``g`` of output ``y`` as a C-contiguous array of ``y``'s shape and dtype."""
    if g.shape == y.shape and g.dtype == y.dtype and g.flags.c_contiguous:
        return g
    return np.ascontiguousarray(np.broadcast_to(g, y.shape), dtype=y.dtype)


def _status(batch) -> np.ndarray:
    return np.empty(batch, dtype=np.int32)


def _flags(params) -> int:
    return int(params["transpose"]) | int(params["rightside"]) << 1 | int(params["lower"]) << 2


# ---- Cholesky family ----------------------------------------------------------------------------
def _potrf_forward(inputs, params, threads):
    a = _c(inputs[0])
    out, status = np.empty_like(a), _status(a.shape[:-2])
    library().potrf(a, out, status, params["lower"], threads)
    return (out,), status


def _potrf_vjp(inputs, outputs, cotangents, params, threads):
    f = _c(outputs[0])
    g = _like(cotangents[0], f)
    ga = np.empty_like(f)
    library().potrf_vjp(f, g, ga, params["lower"], threads)
    return (ga,)


def _potri_forward(inputs, params, threads):
    f = _c(inputs[0])
    out, status = np.empty_like(f), _status(f.shape[:-2])
    library().potri(f, out, status, params["lower"], threads)
    return (out,), status


def _potri_vjp(inputs, outputs, cotangents, params, threads):
    f, x = _c(inputs[0]), _c(outputs[0])
    g = _like(cotangents[0], x)
    gf = np.empty_like(f)
    library().potri_vjp(f, x, g, gf, params["lower"], threads)
    return (gf,)


def _potrs_forward(inputs, params, threads):
    f, b = _c(inputs[0]), _c(inputs[1])
    out, status = np.empty_like(b), _status(f.shape[:-2])
    library().potrs(f, b, out, status, params["lower"], threads)
    return (out,), status


def _potrs_vjp(inputs, outputs, cotangents, params, threads):
    f, b, x = _c(inputs[0]), _c(inputs[1]), _c(outputs[0])
    g = _like(cotangents[0], x)
    gf, gb = np.empty_like(f), np.empty_like(x)
    library().potrs_vjp(f, b, x, g, gf, gb, params["lower"], threads)
    return gf, gb


def _sumlogdiag_forward(inputs, params, threads):
    a = _c(inputs[0])
    out = np.empty(a.shape[:-2], dtype=a.dtype)
    library().sumlogdiag(a, out)
    return (out,), None


def _sumlogdiag_vjp(inputs, outputs, cotangents, params, threads):
    a = _c(inputs[0])
    g = _like(cotangents[0], outputs[0])
    ga = np.empty_like(a)
    library().sumlogdiag_vjp(a, g, ga)
    return (ga,)


# ---- triangular operators -------------------------------------------------------------------------
def _trsm_forward(inputs, params, threads):
    a, b = _c(inputs[0]), _c(inputs[1])
    out, status = np.empty_like(b), _status(a.shape[:-2])
    library().trsm(a, b, out, status, _flags(params), threads, float(params["alpha"]))
    return (out,), status


def _trsm_vjp(inputs, outputs, cotangents, params, threads):
    a, x = _c(inputs[0]), _c(outputs[0])
    g = _like(cotangents[0], x)
    ga, gb = np.empty_like(a), np.empty_like(x)
    library().trsm_vjp(a, x, g, ga, gb, _flags(params), threads, float(params["alpha"]))
    return ga, gb


def _trmm_forward(inputs, params, threads):
    a, b = _c(inputs[0]), _c(inputs[1])
    out = np.empty_like(b)
    library().trmm(a, b, out, _flags(params), threads, float(params["alpha"]))
    return (out,), None


def _trmm_vjp(inputs, outputs, cotangents, params, threads):
    a, b = _c(inputs[0]), _c(inputs[1])
    g = _like(cotangents[0], outputs[0])
    ga, gb = np.empty_like(a), np.empty_like(b)
    library().trmm_vjp(a, b, g, ga, gb, _flags(params), threads, float(params["alpha"]))
    return ga, gb


#: operator name -> {"forward": fn, "vjp": fn}
RULES = {
    "potrf": {"forward": _potrf_forward, "vjp": _potrf_vjp},
    "potri": {"forward": _potri_forward, "vjp": _potri_vjp},
    "potrs": {"forward": _potrs_forward, "vjp": _potrs_vjp},
    "sumlogdiag": {"forward": _sumlogdiag_forward, "vjp": _sumlogdiag_vjp},
    "trsm": {"forward": _trsm_forward, "vjp": _trsm_vjp},
    "trmm": {"forward": _trmm_forward, "vjp": _trmm_vjp},
}


_by_operator: dict[int, tuple] = {}


def rule(op, kind: str):
    """The compiled ``kind`` (``"forward"``/``"vjp"``) rule of the operator ``op``, or ``None``
    when the layer is off or has no such entry. Only the registered spec itself has compiled
    rules: a modified copy (``dataclasses.replace`` of a registered operator) runs its own."""
    if library() is None:
        return None
    hit = _by_operator.get(id(op))
    if hit is None or hit[0] is not op:
        from ..core import operators

        hit = _by_operator[id(op)] = (op, RULES.get(op.name, {}) if operators().get(op.name) is op else {})
    return hit[1].get(kind)
