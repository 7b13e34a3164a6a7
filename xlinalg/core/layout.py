"""Diagonal and triangle layout operators: extractdiag, makediag, extracttrian, maketrian.

All four are linear gathers with fixed index maps, so each one's JVP is itself applied to the
tangent and its VJP is its partner (extract ↔ make). ``offset`` selects the diagonal:
0 the main one, ``k > 0`` the k-th above, ``k < 0`` the k-th below.

Triangles follow MXNet's packing: the lower triangle (``offset < 0``, or ``offset = 0`` with
``lower=True``) row by row; the upper triangle (``offset > 0``, or ``offset = 0`` with
``lower=False``) column by column, i.e. the upper triangle of ``A`` packs like the lower
triangle of ``Aᵀ``.
"""

from __future__ import annotations

import math

from .matrix import device as _device_of
from .memo import memo
from .operator import Arg, Operator, Output, register


@memo
def _diag_positions(n: int, offset: int) -> tuple[int, ...]:
    m = n - abs(offset)
    if offset >= 0:
        return tuple(i * n + i + offset for i in range(m))
    return tuple((i - offset) * n + i for i in range(m))


@memo
def _trian_positions(n: int, offset: int, lower: bool) -> tuple[int, ...]:
    lower = offset < 0 or (offset == 0 and lower)
    k = -abs(offset)  # a lower triangle of A or of Aᵀ, k on or below the diagonal
    pairs = [(i, j) for i in range(n) for j in range(min(i + k, n - 1) + 1)]
    return tuple(i * n + j if lower else j * n + i for i, j in pairs)


@memo
def _inverse_positions(positions: tuple[int, ...], n: int) -> tuple[int, ...]:
    """For each of the ``n*n`` entries, its index in ``positions`` (``len(positions)``: zero)."""
    where = {p: i for i, p in enumerate(positions)}
    return tuple(where.get(p, len(positions)) for p in range(n * n))


_index_cache: dict = {}


def _index(xp, kern, positions, like):
    """``positions`` as an index array of ``like``'s library and device (made once per
    library, device and default index dtype, which JAX's x64 switch changes)."""
    device = _device_of(like)
    dtype = xp.arange(1, device=device).dtype  # the library's default index dtype
    if kern.is_traced(like):  # a compiler is tracing: no side effects (torch.compile)
        return xp.asarray(positions, dtype=dtype, device=device)
    key = (id(positions), xp.__name__, str(device), str(dtype))
    hit = _index_cache.get(key)
    if hit is None or hit[0] is not positions:
        if len(_index_cache) > 256:
            _index_cache.clear()
        hit = _index_cache[key] = (positions, xp.asarray(positions, dtype=dtype, device=device))
    return hit[1]


def _gather(xp, kern, a, positions):
    n = a.shape[-1]
    flat = xp.reshape(a, (*a.shape[:-2], n * n))
    return xp.take(flat, _index(xp, kern, positions, a), axis=-1)


def _place(xp, kern, v, positions, n):
    zero = xp.zeros((*v.shape[:-1], 1), dtype=v.dtype, device=_device_of(v))
    padded = xp.concat([v, zero], axis=-1)
    flat = xp.take(padded, _index(xp, kern, _inverse_positions(positions, n), v), axis=-1)
    return xp.reshape(flat, (*v.shape[:-1], n, n))


def _linear(positions_of, extract: bool):
    """forward/jvp/vjp of a gather (``extract``) or of its transpose, the placement."""

    def apply(xp, kern, x, params, transpose=False):
        if extract != transpose:  # gather from a matrix
            return _gather(xp, kern, x, positions_of(x.shape[-1], params))
        n = _order_from_length(x.shape[-1], params, positions_of)
        return _place(xp, kern, x, positions_of(n, params), n)

    def forward(xp, kern, x, **params):
        return (apply(xp, kern, x, params),)

    def jvp(xp, kern, inputs, outputs, tangents, **params):
        return (apply(xp, kern, tangents[0], params),)

    def vjp(xp, kern, inputs, outputs, cotangents, **params):
        return (apply(xp, kern, cotangents[0], params, transpose=True),)

    return forward, jvp, vjp


def _diag_of(n, params):
    return _diag_positions(n, params["offset"])


def _trian_of(n, params):
    return _trian_positions(n, params["offset"], params.get("lower", True))


def _order_from_length(length, params, positions_of):
    """The matrix order ``n`` whose diagonal/triangle has ``length`` entries."""
    k = abs(params["offset"])
    if positions_of is _diag_of:
        return length + k
    m = triangle_side(length)
    return m + k


def triangle_side(length: int) -> int | None:
    """``m`` with ``m (m + 1) / 2 == length``, or ``None``."""
    m = (math.isqrt(8 * length + 1) - 1) // 2
    return m if m * (m + 1) // 2 == length else None


def _offset_check(shapes, params):
    n, k = shapes[0][-1], params["offset"]
    if (n == 0 and k != 0) or (n > 0 and abs(k) >= n):
        return f"offset {k} is out of range for {n}x{n} matrices"
    return None


def _length_check(shapes, params):
    if triangle_side(shapes[0][-1]) is None:
        return f"length {shapes[0][-1]} is not a triangular number m(m+1)/2"
    return None


def _extract_shape(positions_of):
    def shape(shapes, params):
        return ((len(positions_of(shapes[0][-1], params)),),)

    return shape


def _make_shape(positions_of):
    def shape(shapes, params):
        n = _order_from_length(shapes[0][-1], params, positions_of)
        return ((n, n),)

    return shape


# ---- references: NumPy, one matrix at a time, independent of the index maps above -------------
def _diag_rc(n, offset):
    import numpy as np

    k = offset
    rows = np.arange(max(n - abs(k), 0))
    return (rows, rows + k) if k >= 0 else (rows - k, rows)


def _trian_rc(n, offset, lower=True):
    """(rows, cols) in MXNet's packing order: the lower triangle (``k < 0`` or ``k = 0`` and
    ``lower``) row by row, the upper one column by column (the lower of the transpose)."""
    import numpy as np

    k = offset
    d = abs(k)
    pairs = [(i, j) for i in range(n) for j in range(0, i - d + 1)]
    rows = np.array([p[0] for p in pairs], dtype=int)
    cols = np.array([p[1] for p in pairs], dtype=int)
    return (rows, cols) if (k < 0 or (k == 0 and lower)) else (cols, rows)


def _ref_extract(rc):
    def reference(a, **params):
        r, c = rc(a.shape[0], **params)
        return (a[r, c],)

    return reference


def _ref_make(rc, order):
    def reference(v, **params):
        import numpy as np

        n = order(v.shape[0], params["offset"])
        out = np.zeros((n, n))
        r, c = rc(n, **params)
        out[r, c] = v
        return (out,)

    return reference


def _register(name, extract, positions_of, params, summary, math_text):
    forward, jvp, vjp = _linear(positions_of, extract)
    diag = positions_of is _diag_of
    if extract:
        arg, out = Arg("A", dims=("n", "n")), Output("out", dims=("n-|offset|",) if diag else ("t",))
        reference = _ref_extract(_diag_rc if diag else _trian_rc)
        shape = _extract_shape(positions_of)
    else:
        arg = Arg("a", dims=("m",) if diag else ("t",))
        out = Output("out", dims=("m+|offset|", "m+|offset|") if diag else ("n", "n"))
        order = (lambda m, k: m + abs(k)) if diag else (lambda t, k: triangle_side(t) + abs(k))
        reference = _ref_make(_diag_rc if diag else _trian_rc, order)
        shape = _make_shape(positions_of)
    if extract:
        check = _offset_check
    elif not diag:
        check = _length_check
    else:
        check = None
    grid = {"offset": (0, 1, -1)}
    if "lower" in params:
        grid["lower"] = (True, False)
    return register(
        Operator(
            name=name,
            args=(arg,),
            outputs=(out,),
            params=params,
            forward=forward,
            jvp=jvp,
            vjp=vjp,
            check=check,
            shape=shape,
            summary=summary,
            math=math_text,
            grid=grid,
            reference=reference,
        )
    )

extractdiag = _register(
    "extractdiag", True, _diag_of, {"offset": 0},
    "The ``offset``-th diagonal of ``A`` as a vector.",
    "Forward: ``a_i = A_{i, i+k}``.  JVP: the same of ``dA``.  VJP: ``Ā = makediag(ā, k)``.",
)
makediag = _register(
    "makediag", False, _diag_of, {"offset": 0},
    "The square matrix with ``a`` on its ``offset``-th diagonal, zero elsewhere.",
    "Forward: ``A_{i, i+k} = a_i``.  JVP: the same of ``da``.  VJP: ``ā = extractdiag(Ḡ, k)``.",
)
extracttrian = _register(
    "extracttrian", True, _trian_of, {"offset": 0, "lower": True},
    "The triangle of ``A`` selected by ``offset``/``lower``, packed into a vector.",
    "Forward: gather of the triangle (MXNet's order).  JVP: the same of ``dA``.  "
    "VJP: ``Ā = maketrian(ā, offset, lower)``.",
)
maketrian = _register(
    "maketrian", False, _trian_of, {"offset": 0, "lower": True},
    "The square matrix whose triangle (``offset``/``lower``) is the packed vector ``a``.",
    "Forward: scatter into the triangle (MXNet's order).  JVP: the same of ``da``.  "
    "VJP: ``ā = extracttrian(Ḡ, offset, lower)``.",
)
