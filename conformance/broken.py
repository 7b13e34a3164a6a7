"""Deliberately broken backends: the suite must reject each for the right reason.

Rule-level breakages are :class:`~xlinalg_conformance.backends.CoreRulesBackend` instances running
modified :class:`xlinalg.core.Operator` specs through the generic pipeline; adapter-level
breakages wrap a working backend. :data:`BROKEN` maps a name to ``(factory, failing)``, where
``failing`` maps each operator to run to the checks that must fail (all others must pass).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .backends import NUMPY, Backend, NumpyBackend


def _registered(name):
    from xlinalg.core import operators

    return operators()[name]


# ---- (a) potrf VJP without symmetrization ------------------------------------------------------
def potrf_unsymmetrized_vjp():
    """potrf whose gradient is ``L⁻ᵀ Φ(Lᵀ L̄) L⁻¹`` without ``sym``: the spec declares ``A``
    general, so the pipeline's projection is bypassed; forward and JVP read the triangle and
    symmetrize tangents themselves, so only the returned gradient changes."""
    from xlinalg.core import Arg
    from xlinalg.core.matrix import from_triangle, sym

    op = _registered("potrf")

    def forward(xp, kern, a, *, lower):
        return op.forward(xp, kern, from_triangle(xp, a, lower), lower=lower)

    def jvp(xp, kern, inputs, outputs, tangents, *, lower):
        return op.jvp(xp, kern, (from_triangle(xp, inputs[0], lower),), outputs, (sym(xp, tangents[0]),), lower=lower)

    broken = replace(op, args=(Arg("A", dims=("n", "n"), domain="spd"),), forward=forward, jvp=jvp)
    return NumpyBackend(operators={"potrf": broken}, name="broken-potrf-vjp-unsymmetrized")


# ---- potrf JVP reading a tangent's unread triangle unsymmetrized --------------------------------
def potrf_unsymmetrized_jvp():
    """potrf whose JVP uses the tangent as given, ``L Φ(L⁻¹ dA L⁻ᵀ)`` without ``sym``: correct for
    symmetric tangents (which every derivative check uses), but a tangent in the unread
    triangle acts differently from its mirror image. The spec declares ``A`` general so the
    pipeline's projection is bypassed; the forward reads the triangle and the VJP is
    symmetrized by hand, so only the JVP of non-symmetric tangents changes."""
    from xlinalg.core import Arg
    from xlinalg.core.matrix import from_triangle, sym

    op = _registered("potrf")

    def forward(xp, kern, a, *, lower):
        return op.forward(xp, kern, from_triangle(xp, a, lower), lower=lower)

    def jvp(xp, kern, inputs, outputs, tangents, *, lower):
        return op.jvp(xp, kern, (from_triangle(xp, inputs[0], lower),), outputs, tangents, lower=lower)

    def vjp(xp, kern, inputs, outputs, cotangents, *, lower):
        (g,) = op.vjp(xp, kern, (from_triangle(xp, inputs[0], lower),), outputs, cotangents, lower=lower)
        return (sym(xp, g),)

    broken = replace(op, args=(Arg("A", dims=("n", "n"), domain="spd"),), forward=forward, jvp=jvp, vjp=vjp)
    return NumpyBackend(operators={"potrf": broken}, name="broken-potrf-jvp-unsymmetrized")


# ---- (b) trsm JVP with op(dA) transposed ---------------------------------------------------------
def trsm_transposed_jvp():
    """trsm whose JVP uses ``op(dA)ᵀ`` in place of ``op(dA)``."""
    op = _registered("trsm")

    def jvp(xp, kern, inputs, outputs, tangents, *, transpose, rightside, lower, alpha):
        return op.jvp(xp, kern, inputs, outputs, (xp.matrix_transpose(tangents[0]), tangents[1]),
                      transpose=transpose, rightside=rightside, lower=lower, alpha=alpha)

    return NumpyBackend(operators={"trsm": replace(op, jvp=jvp)}, name="broken-trsm-jvp-transposed")


# ---- (c) trsm VJP ignoring alpha ---------------------------------------------------------------
def trsm_vjp_ignores_alpha():
    """trsm whose VJP returns ``B̄ = op(A)⁻ᵀ Ḡ`` without the factor ``alpha``."""
    op = _registered("trsm")

    def vjp(xp, kern, inputs, outputs, cotangents, *, transpose, rightside, lower, alpha):
        ga, gb = op.vjp(xp, kern, inputs, outputs, cotangents, transpose=transpose, rightside=rightside, lower=lower, alpha=alpha)
        return ga, gb / alpha

    return NumpyBackend(operators={"trsm": replace(op, vjp=vjp)}, name="broken-trsm-vjp-ignores-alpha")


# ---- wrapping backends -----------------------------------------------------------------------
class WrappedBackend(Backend):
    """A backend delegating everything to ``base``; subclasses override what they break."""

    def __init__(self, base: Backend, name: str):
        self.base, self.name = base, name
        self.capabilities = base.capabilities

    def __getattr__(self, attr):  # asarray, to_numpy, dtype_name, device, foreign, ...
        return getattr(self.base, attr)

    def available(self):
        return self.base.available()

    def release(self):
        self.base.release()

    def asarray(self, x):
        return self.base.asarray(x)

    def to_numpy(self, y):
        return self.base.to_numpy(y)

    def dtype_name(self, y):
        return self.base.dtype_name(y)

    def device(self, y):
        return self.base.device(y)

    def foreign(self, x):
        return self.base.foreign(x)

    def call(self, op, arrays, params):
        return self.base.call(op, arrays, params)

    def vjp(self, op, arrays, params, cotangents):
        return self.base.vjp(op, arrays, params, cotangents)

    def jvp(self, op, arrays, tangents, params):
        return self.base.jvp(op, arrays, tangents, params)

    def vmap(self, op, arrays, params):
        return self.base.vmap(op, arrays, params)


class Float64Vjp(WrappedBackend):
    """(d) A VJP that returns float64 gradients for float32 inputs."""

    def vjp(self, op, arrays, params, cotangents):
        return tuple(np.asarray(g, dtype=np.float64) for g in self.base.vjp(op, arrays, params, cotangents))


class DropsLastBatchEntry(WrappedBackend):
    """(e) A batched forward that computes all batch entries but the last (left zero)."""

    def call(self, op, arrays, params):
        from xlinalg.core import operators

        spec = operators()[op]
        try:
            batch = np.broadcast_shapes(*[np.shape(x)[: np.ndim(x) - a.ndim] for x, a in zip(arrays, spec.args)])
        except ValueError:  # let the real call report bad input
            return self.base.call(op, arrays, params)
        size = int(np.prod(batch))
        if size <= 1:
            return self.base.call(op, arrays, params)
        flat = [np.broadcast_to(x, batch + np.shape(x)[np.ndim(x) - a.ndim:]).reshape(size, *np.shape(x)[np.ndim(x) - a.ndim:])
                for x, a in zip(arrays, spec.args)]
        outs = self.base.call(op, [f[:-1] for f in flat], params)
        return tuple(np.concatenate([y, np.zeros((1, *y.shape[1:]), y.dtype)]).reshape(batch + y.shape[1:]) for y in outs)


def syevd_unguarded_degeneracy():
    """syevd whose JVP and VJP use ``F_ij = 1/(λ_j − λ_i)`` for every pair, degenerate or not
    (what PyTorch and JAX do): infinite or NaN gradients at repeated eigenvalues."""
    from xlinalg.core.matrix import diag_embed, diagonal, mT

    op = _registered("syevd")

    def gaps(xp, w):
        diff = w[..., None, :] - w[..., :, None]
        eye = xp.eye(w.shape[-1], dtype=w.dtype)
        with np.errstate(all="ignore"):
            return (1.0 - eye) / (diff + eye)

    def jvp(xp, kern, inputs, outputs, tangents):
        (u, w), (da,) = outputs, tangents
        v = mT(xp, u)
        s = xp.matmul(u, xp.matmul(da, v))
        with np.errstate(all="ignore"):
            return mT(xp, xp.matmul(v, gaps(xp, w) * s)), diagonal(xp, s)

    def vjp(xp, kern, inputs, outputs, cotangents):
        (u, w), (gu, gw) = outputs, cotangents
        with np.errstate(all="ignore"):
            inner = diag_embed(xp, gw) + gaps(xp, w) * xp.matmul(u, mT(xp, gu))
            return (xp.matmul(mT(xp, u), xp.matmul(inner, u)),)

    return NumpyBackend(operators={"syevd": replace(op, jvp=jvp, vjp=vjp)}, name="broken-syevd-unguarded-degeneracy")


class LoopVmap(WrappedBackend):
    """A backend with a ``vmap`` written as a Python loop over axis 0 (correct unless
    ``reverse``: then the results come back in reverse order)."""

    def __init__(self, base, name, *, reverse=False):
        super().__init__(base, name)
        self.capabilities = frozenset(base.capabilities) | {"vmap"}
        self.reverse = reverse

    def vmap(self, op, arrays, params):
        size = np.shape(arrays[0])[0]
        order = range(size - 1, -1, -1) if self.reverse else range(size)
        rows = [self.base.call(op, [x[i] for x in arrays], params) for i in order]
        return tuple(np.stack([r[k] for r in rows]) for k in range(len(rows[0])))


class MutatesInput(WrappedBackend):
    """A forward that scales its first input in place after computing the result."""

    def call(self, op, arrays, params):
        outs = self.base.call(op, arrays, params)
        if np.size(arrays[0]):
            arrays[0][...] *= 2.0
        return outs


class Accumulating(WrappedBackend):
    """A backend with accumulating gradient buffers (capability ``accumulate``), as torch's
    ``.grad``: correct with ``mode="add"``; ``"overwrite"`` writes the new gradient over the
    buffer, ``"drop"`` leaves the buffer as it was (the new gradient is lost)."""

    MODES = ("add", "overwrite", "drop")

    def __init__(self, base, name, *, mode="add"):
        super().__init__(base, name)
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {', '.join(self.MODES)}, got {mode!r}")
        self.capabilities = frozenset(base.capabilities) | {"accumulate"}
        self.mode = mode

    def accumulate_vjp(self, op, arrays, params, cotangents, initial):
        grads = self.base.vjp(op, arrays, params, cotangents)
        if self.mode == "drop":
            return tuple(np.array(x0, copy=True) for x0 in initial)
        if self.mode == "overwrite":
            return grads
        return tuple(x0 + g for x0, g in zip(initial, grads))


class ReportsErrorsLate(WrappedBackend):
    """An asynchronous library: an operation that fails (``xlinalg.LinAlgError``, or a
    ``RuntimeError`` of the computation) returns NaN arrays at once, and its error is raised by
    the library's next operation — or by :meth:`synchronize` when ``synchronizes`` (as MXNet's
    ``mx.nd.waitall``). Validation errors (shapes, dtypes, parameters) are raised at the call,
    as asynchronous libraries check them on the host. Without ``synchronizes`` no caller can
    tell which call failed: the suite must reject it."""

    def __init__(self, base, name, *, synchronizes):
        from .declarations import ErrorContract

        super().__init__(base, name)
        self.synchronizes = synchronizes
        self.pending = None
        if synchronizes:  # failures show at the latest by synchronize(), as declared
            self.error_contract = ErrorContract(timing="async")

    def _raise_pending(self):
        if self.pending is not None:
            exc, self.pending = self.pending, None
            raise exc

    def synchronize(self):
        if self.synchronizes:
            self._raise_pending()

    def _deferred(self, fn, shapes, *args):
        """``fn(*args)``, with a computation error held back and NaN arrays of ``shapes()``
        ((shape, dtype) pairs) returned instead."""
        import xlinalg

        self._raise_pending()
        try:
            return fn(*args)
        except (xlinalg.LinAlgError, RuntimeError) as exc:
            self.pending = exc
            return tuple(np.full(shape, np.nan, dtype) for shape, dtype in shapes())

    def _output_shapes(self, op, arrays, params):
        from xlinalg.core import apply, operators

        _, shapes, dtype = apply.check_signature(operators()[op], [np.shape(x) for x in arrays],
                                                 [str(np.asarray(x).dtype) for x in arrays], params)
        return [(shape, dtype) for shape in shapes]

    def asarray(self, x):
        self._raise_pending()
        return self.base.asarray(x)

    def call(self, op, arrays, params):
        return self._deferred(self.base.call, lambda: self._output_shapes(op, arrays, params), op, arrays, params)

    def vjp(self, op, arrays, params, cotangents):
        return self._deferred(self.base.vjp, lambda: [(np.shape(x), np.asarray(x).dtype) for x in arrays],
                              op, arrays, params, cotangents)

    def jvp(self, op, arrays, tangents, params):
        return self._deferred(self.base.jvp, lambda: self._output_shapes(op, arrays, params), op, arrays, tangents, params)

    def partial_vjp(self, op, arrays, params, cotangents):
        return self._deferred(self.base.partial_vjp, lambda: [(np.shape(x), np.asarray(x).dtype) for x in arrays],
                              op, arrays, params, cotangents)


class UnusedOutputsNotZero(WrappedBackend):
    """A backward pass from some outputs only that reads a stale gradient (ones) for the
    outputs the loss does not use, where the framework must take zero."""

    def partial_vjp(self, op, arrays, params, cotangents):
        outs = self.base.call(op, arrays, params)
        filled = tuple(np.ones_like(y) if g is None else g for y, g in zip(outs, cotangents))
        return self.base.vjp(op, arrays, params, filled)


# ---- further breakages -------------------------------------------------------------------------
def potrf_never_raises():
    """potrf without its failure declaration: a non-positive-definite entry comes out NaN
    instead of raising :class:`xlinalg.LinAlgError`."""
    return NumpyBackend(operators={"potrf": replace(_registered("potrf"), failure=None)}, name="broken-potrf-never-raises")


def syevd_without_sign_rule():
    """syevd returning LAPACK's eigenvectors with their signs flipped (no sign convention)."""
    op = _registered("syevd")

    def forward(xp, kern, a):
        u, lam = op.forward(xp, kern, a)
        return -u, lam

    return NumpyBackend(operators={"syevd": replace(op, forward=forward)}, name="broken-syevd-sign-rule")


#: name -> (backend factory, {operator: checks that must fail}); every other check must pass
BROKEN = {
    "potrf_vjp_unsymmetrized": (potrf_unsymmetrized_vjp, {"potrf": {"structure", "cross"}}),
    "potrf_jvp_unsymmetrized": (potrf_unsymmetrized_jvp, {"potrf": {"structure"}}),
    "trsm_jvp_transposed": (trsm_transposed_jvp, {"trsm": {"fd_grad", "adjoint", "cross"}}),
    "trsm_vjp_ignores_alpha": (trsm_vjp_ignores_alpha, {"trsm": {"fd_grad", "adjoint", "cross"}}),
    "vjp_float64_for_float32": (lambda: Float64Vjp(NUMPY, "broken-vjp-float64"), {"potrf": {"dtype"}, "gemm2": {"dtype"}}),
    "drops_last_batch_entry": (
        lambda: DropsLastBatchEntry(NUMPY, "broken-drops-last-batch-entry"),
        {"gemm2": {"forward", "fd_grad", "batching", "cross"},
         "potrf": {"forward", "fd_grad", "batching", "cross", "errors"}},  # misses a failure in the last entry
    ),
    "potrf_never_raises": (potrf_never_raises, {"potrf": {"errors", "nan_policy"}}),
    "syevd_without_sign_rule": (syevd_without_sign_rule, {"syevd": {"forward", "cross"}}),
    "syevd_unguarded_degeneracy": (syevd_unguarded_degeneracy, {"syevd": {"degenerate"}}),
    "vmap_reversed": (lambda: LoopVmap(NUMPY, "broken-vmap-reversed", reverse=True), {"inverse": {"vmap", "nan_policy"}, "gemm": {"vmap"}}),
    "mutates_input": (lambda: MutatesInput(NUMPY, "broken-mutates-input"), {"det": {"no_mutation"}, "trsm": {"no_mutation"}}),
    "accumulation_overwrites": (lambda: Accumulating(NUMPY, "broken-accumulation-overwrites", mode="overwrite"),
                                {"gemm": {"accumulate"}, "potrf": {"accumulate"}}),
    "accumulation_drops_gradient": (lambda: Accumulating(NUMPY, "broken-accumulation-drops-gradient", mode="drop"),
                                    {"gemm": {"accumulate"}, "potrf": {"accumulate"}}),
    "unused_outputs_not_zero": (lambda: UnusedOutputsNotZero(NUMPY, "broken-unused-outputs-not-zero"), {"syevd": {"degenerate"}}),
    "errors_raised_late": (lambda: ReportsErrorsLate(NUMPY, "broken-errors-raised-late", synchronizes=False),
                           {"potrf": {"errors", "nan_policy"}, "inverse": {"errors", "nan_policy"}}),
}


def __getattr__(name):
    """``xlinalg_conformance.broken:POTRF_VJP_UNSYMMETRIZED`` etc.: the broken backends by
    ``module:attr`` name, built on first access."""
    key = name.lower()
    if key in BROKEN:
        backend = BROKEN[key][0]()
        globals()[name] = backend
        return backend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
