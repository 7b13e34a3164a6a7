"""Public functions: one per operator (made from its spec), ``vjp``, ``jvp`` and the
Array API-named aliases."""

from __future__ import annotations

from collections import namedtuple

from array_api_compat import is_array_api_obj

from . import adapters
from .core import apply
from .core.docs import bind_metadata
from .core.operator import Operator, get, operators


def _pack(op: Operator, outputs: tuple):
    return tuple(outputs) if op.multiple_outputs else outputs[0]


def _unpack(op: Operator, values) -> tuple:
    if not op.multiple_outputs:
        return (values,)
    values = tuple(values)
    if len(values) != len(op.outputs):
        raise ValueError(f"{op.name}: expected {len(op.outputs)} cotangents/tangents ({', '.join(op.output_names)}), got {len(values)}")
    return values


def call(op: Operator, arrays, params):
    """Evaluate ``op``: through a framework adapter when the arrays belong to one, else with
    the core rules on the arrays' own namespace."""
    adapter = adapters.adapter_for(arrays)
    if adapter is not None:
        if any(not adapter.is_array(x) and is_array_api_obj(x) for x in arrays):  # tensors first: no lru_cache helper under torch.compile
            raise apply.mixed_libraries(op, arrays)
        return adapters.bound(adapter, op)(*arrays, **params)
    c = apply.prepare(op, arrays, params)
    return _pack(op, apply.forward(c))


def public_function(op: Operator):
    """The user-facing function of ``op``: positional arrays, keyword-only parameters."""

    def fn(*arrays, **params):
        return call(op, arrays, params)

    return bind_metadata(fn, op, "xlinalg")


# ---- explicit derivatives ---------------------------------------------------------------------
def vjp(op, *primals, **params):
    """Evaluate ``op`` and return ``(outputs, pullback)``, as ``jax.vjp`` does.

    ``pullback(cotangents)`` takes one cotangent per output (an array, or a tuple for operators
    with several outputs; ``None`` means zero) and returns the tuple of cotangents of
    ``primals``, each with its primal's shape. Works for every Array API library.
    """
    spec = get(op)
    c = apply.prepare(spec, primals, params)
    outputs, residuals = apply.forward_saving(c)

    def pullback(cotangents):
        cts = _unpack(spec, cotangents)
        for g, y, o in zip(cts, outputs, spec.outputs):
            if g is not None and tuple(g.shape) != tuple(y.shape):
                raise ValueError(f"{spec.name}: cotangent of {o.name} has shape {tuple(g.shape)}, expected {tuple(y.shape)}")
        return apply.vjp(c, outputs, cts, residuals=residuals)

    return _pack(spec, outputs), pullback


def jvp(op, primals, tangents, **params):
    """Evaluate ``op`` at ``primals`` and its derivative along ``tangents``, as ``jax.jvp``:
    returns ``(outputs, output_tangents)``. ``tangents`` match ``primals`` in shape (``None``:
    zero)."""
    spec = get(op)
    primals, tangents = tuple(primals), tuple(tangents)
    if len(tangents) != len(primals):
        raise ValueError(f"{spec.name}: {len(primals)} primals but {len(tangents)} tangents")
    for t, x, a in zip(tangents, primals, spec.args):
        if t is not None and tuple(t.shape) != tuple(x.shape):
            raise ValueError(f"{spec.name}: tangent of {a.name} has shape {tuple(t.shape)}, expected {tuple(x.shape)}")
    c = apply.prepare(spec, primals, params)
    outputs = apply.forward(c)
    return _pack(spec, outputs), _pack(spec, apply.jvp(c, outputs, tangents))


# ---- public operator functions and namespaces -------------------------------------------------
def _make_all():
    from . import core  # noqa: F401  (registers the operators)

    return {name: public_function(op) for name, op in operators().items()}


FUNCTIONS = _make_all()
EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])


def aliases(functions) -> dict:
    """The Array API-named aliases over a table of operator functions (``functions[name]``):
    the same four for ``xlinalg``, ``xlinalg.torch`` and ``xlinalg.jax``."""
    potrf, syevd, inverse, trsm = (functions[k] for k in ("potrf", "syevd", "inverse", "trsm"))

    def cholesky(x, /, *, upper=False):
        """Cholesky factor, with the Array API signature: ``potrf(x, lower=not upper)``."""
        return potrf(x, lower=not upper)

    def eigh(x, /):
        """``(eigenvalues, eigenvectors)`` with eigenvectors in columns (Array API layout):
        ``syevd`` transposed, including its sign convention and degenerate-gradient policy."""
        u, lam = syevd(x)
        return EighResult(lam, _transpose(u))

    def inv(x, /):
        """Matrix inverse, with the Array API name: ``inverse(x)``."""
        return inverse(x)

    def solve_triangular(a, b, /, *, upper=False, left=True):
        """``a⁻¹ b`` (``left``) or ``b a⁻¹`` for triangular ``a``: ``trsm`` with the names of
        SciPy and ``torch.linalg`` (``upper`` defaults to False)."""
        return trsm(a, b, lower=not upper, rightside=not left)

    return {"cholesky": cholesky, "eigh": eigh, "inv": inv, "solve_triangular": solve_triangular}


def namespace(functions, module: str) -> dict:
    """Module attributes of a namespace of operators: each function, the aliases,
    ``FUNCTIONS``, ``OPERATORS`` and ``__all__``."""
    extra = aliases(functions)
    for name, fn in extra.items():
        fn.__module__, fn.__qualname__ = module, name
    table = {**functions, **extra}
    return {
        **table,
        "FUNCTIONS": dict(functions),
        "OPERATORS": tuple(functions),
        "__all__": [*table, "EighResult", "LinAlgError", "FUNCTIONS", "OPERATORS"],
    }


def _transpose(x):
    if hasattr(x, "mT"):
        return x.mT
    import array_api_compat

    try:
        return array_api_compat.array_namespace(x).matrix_transpose(x)
    except TypeError:  # not an Array API array (MXNet's NDArray)
        return x.swapaxes(x.ndim - 2, x.ndim - 1)
