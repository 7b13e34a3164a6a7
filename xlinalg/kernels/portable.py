"""The portable kernel table: pure Array API, the reference for every other table.

It uses only the standard and its ``linalg`` extension, so it runs under
``array_api_strict``. Library tables (:mod:`xlinalg.kernels.numpy`, ``.torch``, ``.jax``,
``.cupy``) subclass :class:`Kernels` and override what their library does faster.

Contract of every table (all functions batched over leading axes, dtype preserved):

``cholesky(A)``
    lower Cholesky factor of the symmetric ``A``; batch entries that are not positive
    definite come out NaN (never raise).
``solve_triangular(A, B, *, lower, transpose=False, left=True)``
    ``op(A)⁻¹ B`` (``left``) or ``B op(A)⁻¹``, ``op(A) = Aᵀ`` if ``transpose``; only the
    ``lower``/upper triangle of ``A`` is read.
``eigh(A)``
    ``(w, V)``: ascending eigenvalues and column eigenvectors of the symmetric ``A``.
``qr(A)``
    reduced ``(Q, R)`` of ``A`` with at least as many rows as columns.
``inv(A)``, ``det(A)``, ``slogdet(A)``
    as ``xp.linalg``; ``inv`` of a singular batch entry comes out non-finite (never raises).
``is_traced(x)``
    whether ``x`` is a symbolic value under a compiler (no data to check eagerly).
``compiled(op, kind, arrays)``
    the compiled kernel layer's ``"forward"`` or ``"vjp"`` rule of the operator ``op`` for these
    arrays (:mod:`xlinalg.lapack.rules`), or ``None`` where the pure rules are to run.
``error_base``
    the library's own linear-algebra error class (``None``: it has none); the
    :class:`~xlinalg.LinAlgError` raised for arrays of the library is also an instance of it.
"""

from __future__ import annotations

import math


class Kernels:
    """Portable kernels over the namespace ``xp``."""

    name = "portable"
    #: The library's own error class for failures, or ``None`` (see the module docstring).
    error_base = None

    def __init__(self, xp):
        self.xp = xp

    # -- factorizations -------------------------------------------------------------------
    def cholesky(self, a):
        return self._guarded(self.xp.linalg.cholesky, a)

    def eigh(self, a):
        w, v = self.xp.linalg.eigh(a)
        return w, v

    def qr(self, a):
        q, r = self.xp.linalg.qr(a, mode="reduced")
        return q, r

    def inv(self, a):
        return self._guarded(self.xp.linalg.inv, a)

    def det(self, a):
        return self.xp.linalg.det(a)

    def slogdet(self, a):
        sign, logabsdet = self.xp.linalg.slogdet(a)
        return sign, logabsdet

    # -- triangular solve ------------------------------------------------------------------
    def solve_triangular(self, a, b, *, lower, transpose=False, left=True):
        xp = self.xp
        if transpose:
            a, lower = xp.matrix_transpose(a), not lower
        if not left:  # X A = B  <=>  Aᵀ Xᵀ = Bᵀ
            x = self.solve_triangular(
                xp.matrix_transpose(a), xp.matrix_transpose(b), lower=not lower
            )
            return xp.matrix_transpose(x)
        if not lower:  # reverse the order of rows and columns: upper becomes lower
            a = xp.flip(a, axis=(-2, -1))
            return xp.flip(self._forward_substitution(a, xp.flip(b, axis=-2)), axis=-2)
        return self._forward_substitution(a, b)

    def _forward_substitution(self, a, b):
        """Rows of ``X`` with ``tril(A) X = B``, one at a time."""
        xp = self.xp
        n = a.shape[-1]
        if n == 0:
            return b + xp.zeros((*a.shape[:-1], b.shape[-1]), dtype=b.dtype)
        rows = []
        for i in range(n):
            r = b[..., i, :]
            if i:
                prev = xp.stack(rows, axis=-2)
                r = r - xp.squeeze(xp.matmul(a[..., i : i + 1, :i], prev), axis=-2)
            rows.append(r / a[..., i : i + 1, i])
        return xp.stack(rows, axis=-2)

    # -- the compiled layer ------------------------------------------------------------------
    def compiled(self, op, kind: str, arrays):
        """The compiled layer's ``kind`` rule of the operator ``op`` for ``arrays``, as a function
        ``run(*groups, params=...)`` of tuples of this library's arrays (``forward``: the inputs;
        ``vjp``: inputs, outputs, cotangents) returning ``(outputs, status)``; ``status`` is a
        NumPy ``int32`` array of the batch shape (non-zero: that entry failed and its outputs are
        NaN) or ``None``; runs on NumPy arrays (:func:`xlinalg.kernels.numpy.numpy_runner`) also
        take ``out=`` for a ``vjp`` (:func:`xlinalg.core.apply.vjp`). ``None`` when the pure
        rules are to run: here always (no library the layer can read)."""
        return None

    def compiled_saving(self, op, kind: str, arrays):
        """As :meth:`compiled`, for the rules whose forward keeps residuals for the reverse
        (:data:`xlinalg.lapack.rules.SAVING`): ``forward`` returns ``(outputs, status,
        residuals)``, ``vjp`` takes the residuals as its first group. ``None`` where the library
        has none (then :meth:`compiled`'s rules run and the reverse computes them again): here
        always."""
        return None

    # -- helpers ---------------------------------------------------------------------------
    def is_traced(self, x) -> bool:
        return False

    def _failure_errors(self) -> tuple:
        """The exceptions the library raises for a matrix it cannot factor or invert (not
        positive definite, singular): NumPy's ``LinAlgError``, which NumPy, array-api-strict
        and CuPy raise, and the namespace's own ``linalg.LinAlgError`` where it has one. Only
        these mean a failing batch entry; anything else is an error in the call and propagates.

        Returns
        -------
        tuple of type
            Exception classes for ``except``.
        """
        import numpy

        own = getattr(getattr(self.xp, "linalg", None), "LinAlgError", None)
        errors = (numpy.linalg.LinAlgError,)
        if isinstance(own, type) and issubclass(own, Exception) and own not in errors:
            errors += (own,)
        return errors

    def _guarded(self, fn, a):
        """``fn(a)``; where the library raises for a failing batch entry, redo it matrix by
        matrix and fill the failing entries with NaN (the contract above). Only the library's
        linear-algebra errors (:meth:`_failure_errors`) are caught; any other exception is a
        bug in the call, not a failing matrix, and propagates."""
        errors = self._failure_errors()
        try:
            return fn(a)
        except errors:
            pass
        xp = self.xp
        batch, core = a.shape[:-2], a.shape[-2:]
        flat = xp.reshape(a, (math.prod(batch), *core))
        outs = []
        for i in range(flat.shape[0]):
            try:
                outs.append(fn(flat[i, ...]))
            except errors:
                outs.append(xp.full(core, math.nan, dtype=a.dtype))
        if not outs:
            return fn(a)
        return xp.reshape(xp.stack(outs), a.shape)
