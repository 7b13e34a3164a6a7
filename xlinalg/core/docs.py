"""Signatures and docstrings of bound operator functions, generated from the specs.

Every function made from an operator (``xlinalg.<op>``, ``xlinalg.torch.<op>``, ...) gets its
signature and docstring here, so shapes, parameters, errors and formulas cannot drift from the
registry entry. ``note`` appends a framework's own section.
"""

from __future__ import annotations

import inspect

from .operator import Operator
from .shapes import doc_shape

_TYPES = {bool: "bool", int: "int", float: "float"}


def signature(op: Operator) -> inspect.Signature:
    """``(arrays..., /, *, params...)``: the signature of every function bound from ``op``."""
    parameters = [inspect.Parameter(a.name, inspect.Parameter.POSITIONAL_ONLY) for a in op.args]
    parameters += [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v) for k, v in op.params.items()]
    return inspect.Signature(parameters)


def shape_text(item) -> str:
    """``(..., m, k)``, with the flipped layout and the flag that selects it."""
    text = doc_shape(item.dims)
    if item.flip:
        text += f", or {doc_shape(item.dims[::-1])} when ``{item.flip}``"
    return text


def docstring(op: Operator, note: str = "") -> str:
    """The numpydoc docstring of ``op``: summary, parameters with shapes, returns, errors,
    and the forward/JVP/VJP formulas; ``note`` is appended."""
    args = []
    triangle = "the triangle named by ``lower``" if "lower" in op.params else "the lower triangle"
    for a in op.args:
        line = f"{a.name} : array, shape {shape_text(a)}"
        if a.structure == "symmetric":
            line += f"\n    Symmetric: only {triangle} is read; its gradient is symmetric."
        elif a.structure == "triangular":
            line += f"\n    Triangular: only {triangle} is read; its gradient is masked to it."
        args.append(line)
    params = [f"{k} : {_TYPES.get(type(v), type(v).__name__)}, default {v!r}" for k, v in op.params.items()]
    outs = [f"{o.name} : array, shape {shape_text(o)}" for o in op.outputs]
    raises = [
        "TypeError\n    Unsupported or mixed dtypes (float32 and float64 are supported), arrays of different\n"
        "    libraries, unknown or ill-typed parameters.",
        "ValueError\n    Too few dimensions, shapes that do not fit the signature above, batch axes that do\n"
        "    not broadcast; the message names the operator and the shapes.",
    ]
    if op.failure:
        raises.append(
            f"LinAlgError\n    Eagerly, when {op.failure} or the input is not finite; the message names the\n"
            "    batch index. Under a compiler or ``vmap`` that batch entry comes out NaN instead."
        )
    sections = [
        op.summary,
        "Parameters\n----------\n" + "\n".join(args + params),
        "Returns\n-------\n" + "\n".join(outs),
        "Raises\n------\n" + "\n".join(raises),
        "Notes\n-----\nLeading axes are batch axes and broadcast between arguments; outputs keep the\n"
        "inputs' dtype. Works on arrays of any Array API library; torch, JAX and MXNet arrays are\n"
        "differentiable in their framework.\n\n" + op.math,
    ]
    return "\n\n".join(sections) + note


def bind_metadata(fn, op: Operator, module: str, note: str = ""):
    """Give ``fn`` the name, signature, docstring and ``operator`` attribute of ``op``."""
    fn.__signature__ = signature(op)
    fn.__name__ = fn.__qualname__ = op.name
    fn.__module__ = module
    fn.__doc__ = docstring(op, note)
    fn.operator = op
    return fn
