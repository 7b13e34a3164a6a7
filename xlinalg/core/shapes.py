"""The shape rule of an operator: output core shapes from the arguments' core shapes.

Each argument and output names its core dimensions (:class:`~xlinalg.core.operator.Arg`
``dims``). Binding the names to the arguments' sizes checks that equal names have equal sizes
and gives the outputs' shapes; an operator with sizes the names cannot express (a diagonal of
``n − |offset|`` entries) supplies its own ``shape`` function. Validation, the MXNet shape
inference and the conformance references all use :func:`output_shapes`; the error messages are
built here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ShapeError(ValueError):
    """Core shapes that do not fit an operator; the message omits the operator's name."""


def bind_dims(op, core_shapes, params: Mapping[str, Any]) -> dict[str, int]:
    """Sizes of the named dims, or :class:`ShapeError` naming the first conflict."""
    sizes: dict[str, int] = {}
    where: dict[str, str] = {}
    for arg, shape in zip(op.args, core_shapes):
        dims = arg.dims_for(params)
        if arg.square and shape[0] != shape[1]:
            raise ShapeError(f"argument {arg.name} must be square, got core shape {tuple(shape)}")
        for axis, (name, size) in enumerate(zip(dims, shape)):
            label = f"the {_axis_name(axis, len(dims))} of {arg.name}"
            if name in sizes and sizes[name] != size:
                raise ShapeError(
                    f"{label} ({size}) must match {where[name]} ({sizes[name]}): both are {name!r} in the signature"
                )
            sizes.setdefault(name, size)
            where.setdefault(name, label)
    return sizes


def output_shapes(op, core_shapes, params: Mapping[str, Any]) -> tuple[tuple[int, ...], ...]:
    """The outputs' core shapes for arguments of ``core_shapes`` (batch axes removed);
    :class:`ShapeError` when they do not fit ``op``."""
    core_shapes = tuple(tuple(s) for s in core_shapes)
    sizes = bind_dims(op, core_shapes, params)
    if op.check is not None:
        message = op.check(core_shapes, params)
        if message:
            raise ShapeError(message)
    if op.shape is not None:
        out = op.shape(core_shapes, params)
    else:
        out = tuple(tuple(sizes[d] for d in o.dims_for(params)) for o in op.outputs)
    return tuple(tuple(s) for s in out)


def doc_shape(dims: tuple[str, ...]) -> str:
    """``(..., n, k)`` for docstrings; ``(...)`` for no core dims."""
    return "(" + ", ".join(["...", *dims]) + ")"


def _axis_name(axis: int, ndim: int) -> str:
    if ndim == 1:
        return "length"
    return "rows" if axis == 0 else "columns"
