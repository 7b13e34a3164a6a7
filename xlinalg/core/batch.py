"""Batch axes: broadcasting the inputs of an operator and summing gradients back."""

from __future__ import annotations

import math


def batch_shape(shape: tuple, core_ndim: int) -> tuple:
    return tuple(shape[: len(shape) - core_ndim])


def broadcast_batch(shapes: list[tuple]) -> tuple | None:
    """Broadcast batch shapes like ``matmul`` does; ``None`` when they are incompatible."""
    ndim = max([0, *(len(s) for s in shapes)])
    out = []
    for axis in range(ndim):
        size = 1  # compared with ==, never hashed: sizes may be symbolic under torch.compile
        for s in shapes:
            if axis - ndim + len(s) >= 0:
                d = s[axis - ndim + len(s)]
                if d != 1:
                    if size != 1 and d != size:
                        return None
                    size = d
        out.append(size)
    return tuple(out)


def broadcast_to_batch(xp, x, batch: tuple, core_ndim: int):
    """``x`` with its batch axes broadcast to ``batch`` (``x`` itself when they are)."""
    shape = tuple(x.shape)
    target = (*batch, *shape[len(shape) - core_ndim:])
    return x if shape == target else xp.broadcast_to(x, target)


def sum_to_shape(xp, g, shape: tuple):
    """Sum ``g`` over the axes that broadcasting added to an array of ``shape``."""
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and g.shape[lead + i] != 1
    )
    if axes:
        g = xp.sum(g, axis=axes)
    return xp.reshape(g, shape)


def unravel(index: int, shape: tuple) -> tuple:
    """The multi-index of flat position ``index`` in C order."""
    out = []
    for size in reversed(shape):
        out.append(index % size)
        index //= size
    return tuple(reversed(out))


def size(shape: tuple) -> int:
    return math.prod(shape)
