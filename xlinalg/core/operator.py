"""Operator specifications.

An :class:`Operator` is everything xlinalg knows about one operator, independent of any
framework: its array arguments (core rank, squareness, structure), its outputs, its keyword
parameters with defaults, and three pure rules

``forward(xp, kern, *inputs, **params) -> tuple of outputs``
``jvp(xp, kern, inputs, outputs, tangents, **params) -> tuple of output tangents``
``vjp(xp, kern, inputs, outputs, cotangents, **params) -> tuple of input cotangents``

``xp`` is the Array API namespace of the inputs and ``kern`` the kernel table for it
(:mod:`xlinalg.kernels`). Rules see inputs whose batch axes are already broadcast to a common
shape and whose structured arguments are already read (symmetric completed from the named
triangle, triangular masked); tangents arrive projected onto the argument's structure and
cotangents leave projected, so JVP and VJP are exact adjoints. All of that is done once, in
:mod:`xlinalg.core.apply`, not in the rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

#: Argument structures. ``symmetric`` and ``triangular`` read one triangle, chosen by the
#: operator's ``lower`` parameter.
STRUCTURES = ("general", "symmetric", "triangular")


@dataclass(frozen=True)
class Arg:
    """An array argument: ``ndim`` core axes (2: matrix, 1: vector) after the batch axes."""

    name: str
    ndim: int = 2
    square: bool = False
    structure: str = "general"

    def __post_init__(self):
        if self.structure not in STRUCTURES:
            raise ValueError(f"unknown structure {self.structure!r}")


@dataclass(frozen=True)
class Output:
    """An output with ``ndim`` core axes (2: matrix, 1: vector, 0: one number per matrix)."""

    name: str
    ndim: int = 2


@dataclass(frozen=True)
class Operator:
    """A framework-neutral operator: signature, structure and forward/JVP/VJP rules.

    ``check(shapes, params)`` receives the core shapes of the arguments (batch axes removed)
    and returns an error message (without the operator name) or ``None``.
    ``failure`` is the cause reported when an output comes out non-finite for finite inputs
    (``None``: non-finite outputs are IEEE results, not errors).
    """

    name: str
    args: tuple[Arg, ...]
    outputs: tuple[Output, ...]
    forward: Callable[..., tuple]
    jvp: Callable[..., tuple]
    vjp: Callable[..., tuple]
    params: Mapping[str, Any] = field(default_factory=dict)
    check: Callable[[tuple, Mapping[str, Any]], str | None] | None = None
    failure: str | None = None
    summary: str = ""
    math: str = ""

    @property
    def arg_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)

    @property
    def multiple_outputs(self) -> bool:
        return len(self.outputs) > 1

    def lower(self, params: Mapping[str, Any]) -> bool:
        """Which triangle a structured argument is read from."""
        return bool(params.get("lower", True))

    def __repr__(self) -> str:
        return f"<xlinalg operator {self.name}>"


_REGISTRY: dict[str, Operator] = {}


def register(op: Operator) -> Operator:
    if op.name in _REGISTRY:
        raise ValueError(f"operator {op.name!r} registered twice")
    _REGISTRY[op.name] = op
    return op


def operators() -> dict[str, Operator]:
    """All registered operators by name (import :mod:`xlinalg.core` first)."""
    return dict(_REGISTRY)


def get(op) -> Operator:
    """The :class:`Operator` for a name, a public xlinalg function or an operator."""
    if isinstance(op, Operator):
        return op
    spec = getattr(op, "operator", None)
    if isinstance(spec, Operator):
        return spec
    if isinstance(op, str) and op in _REGISTRY:
        return _REGISTRY[op]
    raise ValueError(f"not an xlinalg operator: {op!r}; known: {', '.join(sorted(_REGISTRY))}")
