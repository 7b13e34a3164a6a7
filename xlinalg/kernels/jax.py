"""JAX kernels: ``jax.lax.linalg`` primitives and ``jax.numpy.linalg``.

Every kernel is a JAX primitive (or a composition of them) that JAX can differentiate,
transpose and batch, so the core's JVP rules evaluated on these kernels can be linearized and
transposed by JAX: reverse mode, higher orders and ``vmap`` follow from the forward-mode rules.

:class:`JaxKernels` never runs the compiled layer (``compiled`` is ``None``): an XLA custom call
has no derivative, and the core's rules on this table are what JAX differentiates.
:class:`JaxFfiKernels` (:func:`ffi_kernels`) runs it through XLA FFI
(:mod:`xlinalg.lapack.jax_ffi`) when traced, and on NumPy views of concrete CPU arrays (no XLA
program to compile per input signature); only the JAX adapter uses it, in places whose
derivatives and platform it decides itself (the lowerings of its primitives, eager calls on the
CPU). :func:`placement` tells the three cases apart.
"""

from __future__ import annotations

from functools import cache, partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import lapack
from .numpy import host_runner
from .portable import Kernels


class JaxKernels(Kernels):
    """Kernels over ``jax.numpy``: failures come out NaN/inf, nothing raises. JAX has no
    linear-algebra error class of its own (``error_base`` stays ``None``)."""

    name = "jax"

    def cholesky(self, a):
        # The core passes a symmetric matrix already (read from one triangle); the primitive
        # reads the lower triangle and fills failing batch entries with NaN.
        return lax.linalg.cholesky(a, symmetrize_input=False)

    def eigh(self, a):
        v, w = lax.linalg.eigh(a, lower=True, symmetrize_input=False)
        return w, v

    def qr(self, a):
        q, r = lax.linalg.qr(a, full_matrices=False)
        return q, r

    def inv(self, a):
        return jnp.linalg.inv(a)

    def det(self, a):
        return jnp.linalg.det(a)

    def slogdet(self, a):
        sign, logabsdet = jnp.linalg.slogdet(a)
        return sign, logabsdet

    def solve_triangular(self, a, b, *, lower, transpose=False, left=True):
        batch = jnp.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        if a.shape[:-2] != batch:
            a = jnp.broadcast_to(a, (*batch, *a.shape[-2:]))
        if b.shape[:-2] != batch:
            b = jnp.broadcast_to(b, (*batch, *b.shape[-2:]))
        return lax.linalg.triangular_solve(a, b, left_side=left, lower=lower, transpose_a=transpose)

    def is_traced(self, x) -> bool:
        return isinstance(x, jax.core.Tracer)


class JaxFfiKernels(JaxKernels):
    """:class:`JaxKernels` whose ``compiled`` runs the compiled layer. On concrete CPU arrays (an
    eager call, the primal of an eager ``jax.grad``/``jax.jvp``, an eager pullback) that is the
    compiled rule of every operator that has one, on NumPy views of the arrays' memory, as for
    NumPy and torch, instead of an XLA program compiled for each new input signature; the
    results go to the inputs' CPU device (JAX's default device may be a GPU). Traced, it is the
    XLA FFI entries of the operators that have them: the custom calls are not differentiable,
    and they lower to the handler of whatever platform the program is lowered for, so callers
    make sure of both (:mod:`xlinalg.adapters.jax`). Concrete arrays on a device other than the
    CPU never run here (``None``: their data is not read through host memory)."""

    def compiled(self, op, kind, arrays):
        from ..lapack import jax_ffi

        where = placement(arrays)
        if where == "cpu":  # None where the operator has no compiled rule
            return _host_runner(op, kind, arrays)
        if where == "device" or jax_ffi.entry(op) is None:
            return None
        if kind == "forward":

            def run(inputs, *, params):
                outputs, status = jax_ffi.forward(op, params, inputs)
                # traced (jit, vmap): nothing to test; the failing entries are NaN already
                return outputs, None if status is None or self.is_traced(status) else status

        else:

            def run(inputs, outputs, cotangents, *, params):
                return jax_ffi.vjp(op, params, inputs, outputs, cotangents), None

        return run

    def compiled_saving(self, op, kind, arrays):
        """As :meth:`compiled`, for the variants that keep residuals for the reverse
        (:func:`xlinalg.lapack.jax_ffi.saves`): on concrete CPU arrays the NumPy rules, traced
        the FFI entries (whose failing entries are NaN)."""
        from ..lapack import jax_ffi

        where = placement(arrays)
        if where == "cpu":
            return _host_runner(op, kind, arrays, saving=True)
        if where == "device" or not jax_ffi.saves(op):
            return None
        if kind == "forward":

            def run(inputs, *, params):
                outputs, _, residuals = jax_ffi.forward(op, params, inputs, saving=True)
                return outputs, None, residuals

        else:

            def run(residuals, inputs, outputs, cotangents, *, params):
                return jax_ffi.vjp(op, params, inputs, outputs, cotangents, residuals), None

        return run


def _host_runner(op, kind: str, arrays, saving: bool = False):
    """The compiled rule on NumPy views of concrete CPU arrays, its results put on the arrays'
    CPU device (:func:`xlinalg.kernels.numpy.host_runner`)."""
    put = jax.device_put if _default_backend() == "cpu" else partial(jax.device_put, device=_device(arrays))
    return host_runner(op, kind, lapack.threads(), arrays, np.asarray, put, saving=saving)


_ffi_kernels: list = []


def ffi_kernels() -> JaxFfiKernels:
    """The (one) :class:`JaxFfiKernels` table over ``jax.numpy``."""
    if not _ffi_kernels:
        _ffi_kernels.append(JaxFfiKernels(jnp))
    return _ffi_kernels[0]


def placement(arrays) -> str:
    """Where a computation on ``arrays`` runs, as far as the arrays say.

    Returns
    -------
    str
        ``"traced"`` when some array is a tracer (no device to ask: the platform is the one the
        program is lowered for), ``"cpu"`` when every array is a concrete array on CPU devices,
        else ``"device"`` (some array on another device, or not a JAX array).
    """
    where = "cpu"
    for x in arrays:
        if isinstance(x, jax.core.Tracer):
            return "traced"
        devices = getattr(x, "devices", None)
        if devices is None or any(d.platform != "cpu" for d in devices()):
            where = "device"
    return where


@cache
def _default_backend() -> str:
    return jax.default_backend()


def _device(arrays):
    """The device of the first array (a single CPU device for :func:`placement` ``"cpu"``)."""
    return next(iter(arrays[0].devices()))
