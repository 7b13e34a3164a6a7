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
from functools import lru_cache

import array_api_compat

from .operator import Arg, Operator, Output, register


@lru_cache(maxsize=64)
def _diag_positions(n: int, offset: int) -> tuple[int, ...]:
    m = n - abs(offset)
    if offset >= 0:
        return tuple(i * n + i + offset for i in range(m))
    return tuple((i - offset) * n + i for i in range(m))


@lru_cache(maxsize=64)
def _trian_positions(n: int, offset: int, lower: bool) -> tuple[int, ...]:
    lower = offset < 0 or (offset == 0 and lower)
    k = -abs(offset)  # a lower triangle of A or of Aᵀ, k on or below the diagonal
    pairs = [(i, j) for i in range(n) for j in range(min(i + k, n - 1) + 1)]
    return tuple(i * n + j if lower else j * n + i for i, j in pairs)


@lru_cache(maxsize=64)
def _inverse_positions(positions: tuple[int, ...], n: int) -> tuple[int, ...]:
    """For each of the ``n*n`` entries, its index in ``positions`` (``len(positions)``: zero)."""
    where = {p: i for i, p in enumerate(positions)}
    return tuple(where.get(p, len(positions)) for p in range(n * n))


_index_cache: dict = {}


def _index(xp, positions, like):
    """``positions`` as an index array of ``like``'s library and device (made once per
    library, device and default index dtype, which JAX's x64 switch changes)."""
    from ..kernels import kernels_for

    device = array_api_compat.device(like)
    dtype = xp.arange(1, device=device).dtype  # the library's default index dtype
    if kernels_for(xp).is_traced(like):  # a compiler is tracing: no side effects (torch.compile)
        return xp.asarray(positions, dtype=dtype, device=device)
    key = (id(positions), xp.__name__, str(device), str(dtype))
    hit = _index_cache.get(key)
    if hit is None or hit[0] is not positions:
        if len(_index_cache) > 256:
            _index_cache.clear()
        hit = _index_cache[key] = (positions, xp.asarray(positions, dtype=dtype, device=device))
    return hit[1]


def _gather(xp, a, positions):
    n = a.shape[-1]
    flat = xp.reshape(a, (*a.shape[:-2], n * n))
    return xp.take(flat, _index(xp, positions, a), axis=-1)


def _place(xp, v, positions, n):
    zero = xp.zeros((*v.shape[:-1], 1), dtype=v.dtype, device=array_api_compat.device(v))
    padded = xp.concat([v, zero], axis=-1)
    flat = xp.take(padded, _index(xp, _inverse_positions(positions, n), v), axis=-1)
    return xp.reshape(flat, (*v.shape[:-1], n, n))


def _linear(positions_of, extract: bool):
    """forward/jvp/vjp of a gather (``extract``) or of its transpose, the placement."""

    def apply(xp, x, params, transpose=False):
        if extract != transpose:  # gather from a matrix
            return _gather(xp, x, positions_of(x.shape[-1], params))
        n = _order_from_length(x.shape[-1], params, positions_of)
        return _place(xp, x, positions_of(n, params), n)

    def forward(xp, kern, x, **params):
        return (apply(xp, x, params),)

    def jvp(xp, kern, inputs, outputs, tangents, **params):
        return (apply(xp, tangents[0], params),)

    def vjp(xp, kern, inputs, outputs, cotangents, **params):
        return (apply(xp, cotangents[0], params, transpose=True),)

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


def _register(name, extract, positions_of, params, summary, math_text):
    forward, jvp, vjp = _linear(positions_of, extract)
    arg = Arg("A", square=True) if extract else Arg("a", ndim=1)
    out = Output("out", ndim=1 if extract else 2)
    if extract:
        check = _offset_check
    elif positions_of is _trian_of:
        check = _length_check
    else:
        check = None
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
            summary=summary,
            math=math_text,
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
