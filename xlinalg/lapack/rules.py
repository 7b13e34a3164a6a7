"""The compiled layer's operator rules on NumPy arrays.

``RULES[name]`` maps ``"forward"`` and ``"vjp"`` to functions over NumPy arrays of one float
dtype whose batch axes are already broadcast (:func:`xlinalg.core.apply.prepare`):

``forward(inputs, params, threads) -> (outputs, status)``
    the operator's outputs and an ``int32`` array of the batch shape, non-zero where the entry
    failed (its outputs are then entirely NaN). Only the named triangle of structured arguments
    is read.
``vjp(inputs, outputs, cotangents, params, threads, out=None) -> grads``
    the input cotangents, already projected onto each argument's structure (symmetric, or
    masked to the named triangle), batch axes not summed. ``out`` (optional): one array or
    ``None`` per input, which the cotangent of that input is written into where it fits (same
    shape and dtype, C-contiguous, writeable; it must not overlap the other arrays): that
    cotangent *is* then ``out[i]``, otherwise a new array.

Every function returns ``None`` for a call it does not take (then the pure rules run).

``SAVING[name]`` holds a second pair for operators whose reverse would otherwise compute again
what the forward computed (potrs: Y = L⁻¹ B; det and slogdet: A's LU factors); bindings that
can keep arrays between the two passes use it (:func:`xlinalg.core.apply.forward_saving`).
"""

from __future__ import annotations

import numpy as np

from . import library


def _c(x):
    return np.ascontiguousarray(x)


def _like(g, y):
    """The cotangent ``g`` of output ``y`` as a C-contiguous array of ``y``'s shape and dtype."""
    if g.shape != y.shape:
        g = np.broadcast_to(g, y.shape)
    elif g.dtype == y.dtype and g.flags.c_contiguous:
        return g
    return np.ascontiguousarray(g, dtype=y.dtype)


def _grad(out, i, like):
    """``out[i]`` where it can hold an array shaped like ``like`` (the rules' ``out``), else a
    new one."""
    o = None if out is None else out[i]
    if (
        isinstance(o, np.ndarray)
        and o.shape == like.shape
        and o.dtype == like.dtype
        and o.flags.c_contiguous
        and o.flags.writeable
    ):
        return o
    return np.empty_like(like)


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


def _potrf_vjp(inputs, outputs, cotangents, params, threads, out=None):
    f = _c(outputs[0])
    g = _like(cotangents[0], f)
    ga = _grad(out, 0, f)
    library().potrf_vjp(f, g, ga, params["lower"], threads)
    return (ga,)


def _potri_forward(inputs, params, threads):
    f = _c(inputs[0])
    out, status = np.empty_like(f), _status(f.shape[:-2])
    library().potri(f, out, status, params["lower"], threads)
    return (out,), status


def _potri_vjp(inputs, outputs, cotangents, params, threads, out=None):
    f, x = _c(inputs[0]), _c(outputs[0])
    g = _like(cotangents[0], x)
    gf = _grad(out, 0, f)
    library().potri_vjp(f, x, g, gf, params["lower"], threads)
    return (gf,)


def _potrs_forward(inputs, params, threads):
    f, b = _c(inputs[0]), _c(inputs[1])
    out, status = np.empty_like(b), _status(f.shape[:-2])
    library().potrs(f, b, out, status, params["lower"], threads)
    return (out,), status


def _potrs_forward_saving(inputs, params, threads):
    f, b = _c(inputs[0]), _c(inputs[1])
    out, y, status = np.empty_like(b), np.empty_like(b), _status(f.shape[:-2])
    library().potrs_y(f, b, out, y, status, params["lower"], threads)
    return (out,), status, (y,)


def _potrs_vjp(inputs, outputs, cotangents, params, threads, out=None):
    return _potrs_reverse(inputs, _c(inputs[1]), outputs, cotangents, params, threads, library().potrs_vjp, out)


def _potrs_vjp_saved(residuals, inputs, outputs, cotangents, params, threads, out=None):
    return _potrs_reverse(inputs, residuals[0], outputs, cotangents, params, threads, library().potrs_vjp_y, out)


def _potrs_reverse(inputs, rhs, outputs, cotangents, params, threads, entry, out):
    """potrs's reverse from B (``potrs_vjp``) or from Y = L⁻¹ B (``potrs_vjp_y``)."""
    f, x = _c(inputs[0]), _c(outputs[0])
    g = _like(cotangents[0], x)
    gf, gb = _grad(out, 0, f), _grad(out, 1, x)
    entry(f, rhs, x, g, gf, gb, params["lower"], threads)
    return gf, gb


def _sumlogdiag_forward(inputs, params, threads):
    a = _c(inputs[0])
    out = np.empty(a.shape[:-2], dtype=a.dtype)
    library().sumlogdiag(a, out)
    return (out,), None


def _sumlogdiag_vjp(inputs, outputs, cotangents, params, threads, out=None):
    a = _c(inputs[0])
    g = _like(cotangents[0], outputs[0])
    ga = _grad(out, 0, a)
    library().sumlogdiag_vjp(a, g, ga)
    return (ga,)


# ---- triangular operators -------------------------------------------------------------------------
def _trsm_forward(inputs, params, threads):
    a, b = _c(inputs[0]), _c(inputs[1])
    out, status = np.empty_like(b), _status(a.shape[:-2])
    library().trsm(a, b, out, status, _flags(params), threads, float(params["alpha"]))
    return (out,), status


def _trsm_vjp(inputs, outputs, cotangents, params, threads, out=None):
    a, x = _c(inputs[0]), _c(outputs[0])
    g = _like(cotangents[0], x)
    ga, gb = _grad(out, 0, a), _grad(out, 1, x)
    library().trsm_vjp(a, x, g, ga, gb, _flags(params), threads, float(params["alpha"]))
    return ga, gb


def _trmm_forward(inputs, params, threads):
    a, b = _c(inputs[0]), _c(inputs[1])
    out = np.empty_like(b)
    library().trmm(a, b, out, _flags(params), threads, float(params["alpha"]))
    return (out,), None


def _trmm_vjp(inputs, outputs, cotangents, params, threads, out=None):
    a, b = _c(inputs[0]), _c(inputs[1])
    g = _like(cotangents[0], outputs[0])
    ga, gb = _grad(out, 0, a), _grad(out, 1, b)
    library().trmm_vjp(a, b, g, ga, gb, _flags(params), threads, float(params["alpha"]))
    return ga, gb


# ---- symmetric eigendecomposition ------------------------------------------------------------------
def _syevd_forward(inputs, params, threads):
    a = _c(inputs[0])
    u, w = np.empty_like(a), np.empty(a.shape[:-1], dtype=a.dtype)
    library().syevd(a, u, w, threads)
    return (u, w), None


def _syevd_vjp(inputs, outputs, cotangents, params, threads, out=None):
    u, w = _c(outputs[0]), _c(outputs[1])
    gu, gw = _like(cotangents[0], u), _like(cotangents[1], w)
    ga = _grad(out, 0, u)
    library().syevd_vjp(u, w, gu, gw, ga, threads)
    return (ga,)


# ---- gemm, gemm2 -----------------------------------------------------------------------------------
def _product_flags(params) -> int:
    return int(params["transpose_a"]) | int(params["transpose_b"]) << 1


def _product_shape(a, b, params):
    m = a.shape[-1] if params["transpose_a"] else a.shape[-2]
    p = b.shape[-2] if params["transpose_b"] else b.shape[-1]
    return a.shape[:-2] + (m, p)


def _gemm_forward(inputs, params, threads):
    a, b = _c(inputs[0]), _c(inputs[1])
    out = np.empty(_product_shape(a, b, params), dtype=a.dtype)
    c = _c(inputs[2]) if len(inputs) == 3 else None  # gemm2: no c
    library().gemm(a, b, c, out, _product_flags(params), threads, float(params["alpha"]), float(params.get("beta", 0.0)))
    return (out,), None


def _gemm_vjp(inputs, outputs, cotangents, params, threads, out=None):
    a, b = _c(inputs[0]), _c(inputs[1])
    g = _like(cotangents[0], outputs[0])
    grads = (_grad(out, 0, a), _grad(out, 1, b)) + ((_grad(out, 2, g),) if len(inputs) == 3 else ())
    gc = grads[2] if len(grads) == 3 else None  # gemm2: no gc
    library().gemm_vjp(a, b, g, grads[0], grads[1], gc, _product_flags(params), threads, float(params["alpha"]),
                       float(params.get("beta", 0.0)))
    return grads


# ---- syrk --------------------------------------------------------------------------------------------
def _syrk_out_shape(a, transpose):
    n = a.shape[-1] if transpose else a.shape[-2]
    return a.shape[:-2] + (n, n)


def _syrk_forward(inputs, params, threads):
    a = _c(inputs[0])
    out = np.empty(_syrk_out_shape(a, params["transpose"]), dtype=a.dtype)
    library().syrk(a, out, int(params["transpose"]), threads, float(params["alpha"]))
    return (out,), None


def _syrk_vjp(inputs, outputs, cotangents, params, threads, out=None):
    a = _c(inputs[0])
    g = _like(cotangents[0], outputs[0])
    ga = _grad(out, 0, a)
    library().syrk_vjp(a, g, ga, int(params["transpose"]), threads, float(params["alpha"]))
    return (ga,)


# ---- inverse, det, slogdet -------------------------------------------------------------------------
def _inverse_forward(inputs, params, threads):
    a = _c(inputs[0])
    out, status = np.empty_like(a), _status(a.shape[:-2])
    library().inverse(a, out, status, threads)
    return (out,), status


def _inverse_vjp(inputs, outputs, cotangents, params, threads, out=None):
    x = _c(outputs[0])
    g = _like(cotangents[0], x)
    ga = _grad(out, 0, x)
    library().inverse_vjp(x, g, ga, threads)
    return (ga,)


def _determinant_forward(inputs, log: bool, save: bool, threads):
    """det (``log``: sign and log|det|) of A, and with ``save`` the residuals of its reverse:
    A's LU factors (column-major, ?getrf's) and pivots (1-based, in A's dtype)."""
    a = _c(inputs[0])
    outputs = tuple(np.empty(a.shape[:-2], dtype=a.dtype) for _ in range(2 if log else 1))
    lib = library()
    if not save:
        (lib.slogdet if log else lib.det)(a, *outputs, threads)
        return outputs, None
    residuals = (np.empty_like(a), np.empty(a.shape[:-1], dtype=a.dtype))
    (lib.slogdet_lu if log else lib.det_lu)(a, *outputs, *residuals, threads)
    return outputs, None, residuals


def _det_forward(inputs, params, threads):
    return _determinant_forward(inputs, False, False, threads)


def _det_forward_saving(inputs, params, threads):
    return _determinant_forward(inputs, False, True, threads)


def _det_vjp(inputs, outputs, cotangents, params, threads, out=None):
    a = _c(inputs[0])
    ga = _grad(out, 0, a)
    library().det_vjp(a, _like(cotangents[0], outputs[0]), ga, threads)
    return (ga,)


def _det_vjp_saved(residuals, inputs, outputs, cotangents, params, threads, out=None):
    lu, pivots = residuals
    ga = _grad(out, 0, lu)
    library().det_vjp_lu(lu, pivots, _like(cotangents[0], outputs[0]), ga, threads)
    return (ga,)


def _slogdet_forward(inputs, params, threads):
    return _determinant_forward(inputs, True, False, threads)


def _slogdet_forward_saving(inputs, params, threads):
    return _determinant_forward(inputs, True, True, threads)


# (slogdet's reverses: the sign's cotangent is ignored, piecewise constant)
def _slogdet_vjp(inputs, outputs, cotangents, params, threads, out=None):
    a = _c(inputs[0])
    ga = _grad(out, 0, a)
    library().slogdet_vjp(a, _like(cotangents[1], outputs[1]), ga, threads)
    return (ga,)


def _slogdet_vjp_saved(residuals, inputs, outputs, cotangents, params, threads, out=None):
    lu, pivots = residuals
    ga = _grad(out, 0, lu)
    library().slogdet_vjp_lu(lu, pivots, _like(cotangents[1], outputs[1]), ga, threads)
    return (ga,)


# ---- LQ factorization ------------------------------------------------------------------------------
def _gelqf_forward(inputs, params, threads):
    a = _c(inputs[0])
    m = a.shape[-2]
    q, el, status = np.empty_like(a), np.empty(a.shape[:-1] + (m,), dtype=a.dtype), _status(a.shape[:-2])
    library().gelqf(a, q, el, status, threads)
    return (q, el), status


def _gelqf_vjp(inputs, outputs, cotangents, params, threads, out=None):
    q, el = _c(outputs[0]), _c(outputs[1])
    gq, gl = _like(cotangents[0], q), _like(cotangents[1], el)
    ga = _grad(out, 0, q)
    library().gelqf_vjp(q, el, gq, gl, ga, threads)
    return (ga,)


#: operator name -> {"forward": fn, "vjp": fn}
RULES = {
    "potrf": {"forward": _potrf_forward, "vjp": _potrf_vjp},
    "potri": {"forward": _potri_forward, "vjp": _potri_vjp},
    "potrs": {"forward": _potrs_forward, "vjp": _potrs_vjp},
    "sumlogdiag": {"forward": _sumlogdiag_forward, "vjp": _sumlogdiag_vjp},
    "trsm": {"forward": _trsm_forward, "vjp": _trsm_vjp},
    "trmm": {"forward": _trmm_forward, "vjp": _trmm_vjp},
    "gemm": {"forward": _gemm_forward, "vjp": _gemm_vjp},
    "gemm2": {"forward": _gemm_forward, "vjp": _gemm_vjp},
    "syrk": {"forward": _syrk_forward, "vjp": _syrk_vjp},
    "syevd": {"forward": _syevd_forward, "vjp": _syevd_vjp},
    "inverse": {"forward": _inverse_forward, "vjp": _inverse_vjp},
    "det": {"forward": _det_forward, "vjp": _det_vjp},
    "slogdet": {"forward": _slogdet_forward, "vjp": _slogdet_vjp},
    "gelqf": {"forward": _gelqf_forward, "vjp": _gelqf_vjp},
}


#: operator name -> {"forward": fn, "vjp": fn}: the rules whose forward keeps residuals for the
#: reverse (what it computed and the reverse would compute again), for bindings that can hold
#: them between the two passes: ``forward(inputs, params, threads) -> (outputs, status,
#: residuals)``, ``vjp(residuals, inputs, outputs, cotangents, params, threads, out=None) -> grads``.
#: Residuals are a tuple of NumPy arrays, only ever passed from one to the other.
SAVING = {
    "potrs": {"forward": _potrs_forward_saving, "vjp": _potrs_vjp_saved},
    "det": {"forward": _det_forward_saving, "vjp": _det_vjp_saved},
    "slogdet": {"forward": _slogdet_forward_saving, "vjp": _slogdet_vjp_saved},
}


_by_operator: dict[int, tuple] = {}


def rule(op, kind: str, *, saving: bool = False):
    """The compiled ``kind`` (``"forward"``/``"vjp"``) rule of the operator ``op`` (of
    :data:`SAVING` with ``saving``), or ``None`` when the layer is off or has no such entry.
    Only the registered spec itself has compiled rules: a modified copy (``dataclasses.replace``
    of a registered operator) runs its own."""
    if library() is None:
        return None
    hit = _by_operator.get(id(op))
    if hit is None or hit[0] is not op:
        from ..core import operators

        registered = operators().get(op.name) is op
        hit = _by_operator[id(op)] = (op, RULES.get(op.name, {}) if registered else {}, SAVING.get(op.name, {}) if registered else {})
    return hit[2 if saving else 1].get(kind)
