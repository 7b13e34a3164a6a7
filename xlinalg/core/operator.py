"""Operator specifications: the one registry entry per operator.

An :class:`Operator` is everything xlinalg knows about one operator, independent of any
framework, and every other part of the project is generated from it: the public functions and
their docstrings, each framework's namespace, validation and error messages, the MXNet shape
inference, the tests, the conformance suite and the operator reference.

An entry holds

- the **signature**: array arguments (:class:`Arg`: named core dimensions, structure, the
  domain samples are drawn from), outputs (:class:`Output`), keyword parameters with defaults;
- the **shape rule**: output core shapes from the arguments' core shapes, by unifying the named
  dimensions (:mod:`xlinalg.core.shapes`), or a custom ``shape`` function; ``check`` adds
  constraints the dimension names cannot express. Outputs have the common dtype of the inputs;
- three pure **rules**

  ``forward(xp, kern, *inputs, **params) -> tuple of outputs``
  ``jvp(xp, kern, inputs, outputs, tangents, **params) -> tuple of output tangents``
  ``vjp(xp, kern, inputs, outputs, cotangents, **params) -> tuple of input cotangents``

  ``xp`` is the Array API namespace of the inputs and ``kern`` the kernel table for it
  (:mod:`xlinalg.kernels`). Rules see inputs whose batch axes are already broadcast to a common
  shape and whose structured arguments are already read (symmetric completed from the named
  triangle, triangular masked); tangents arrive projected onto the argument's structure and
  cotangents leave projected, so JVP and VJP are exact adjoints. All of that is done once, in
  :mod:`xlinalg.core.apply`, not in the rules;
- the **testing entry** (in the spirit of PyTorch's OpInfo): the parameter ``grid`` every test
  walks, an independent float64 ``reference`` (NumPy/SciPy, one matrix at a time), the
  ``invariants`` that define non-unique outputs, ``breaks`` (how to make a valid input fail, for
  operators with a ``failure``) and ``condition`` (a bound on the call's conditioning when the
  arguments' domains do not give one). Inputs are drawn by :mod:`xlinalg.core.samples` from the
  arguments' domains.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Argument structures. ``symmetric`` and ``triangular`` read one triangle, chosen by the
#: operator's ``lower`` parameter.
STRUCTURES = ("general", "symmetric", "triangular")

#: Domains test inputs are drawn from (see :mod:`xlinalg.core.samples`).
DOMAINS = ("general", "nonsingular", "spd", "spectrum", "triangular", "factor", "positive_diagonal", "full_rank")


@dataclass(frozen=True)
class Arg:
    """An array argument whose core axes (after the batch axes) have the named ``dims``.

    ``dims``: one name per core axis, e.g. ``("n", "n")`` for a square matrix, ``("n", "k")``;
    equal names must have equal sizes across all arguments. ``flip``: the name of a bool
    parameter that, when true, reverses the two dims (``transpose_a``, ``rightside``).
    ``structure``: which entries are read (``symmetric``/``triangular``: one triangle).
    ``domain``: where valid test inputs come from (:data:`DOMAINS`).
    """

    name: str
    dims: tuple[str, ...] = ("m", "n")
    flip: str | None = None
    structure: str = "general"
    domain: str = "general"

    def __post_init__(self):
        if self.structure not in STRUCTURES:
            raise ValueError(f"unknown structure {self.structure!r}")
        if self.domain not in DOMAINS:
            raise ValueError(f"unknown domain {self.domain!r}; known: {', '.join(DOMAINS)}")
        if self.structure != "general" and not self.square:
            raise ValueError(f"argument {self.name}: a {self.structure} argument must be square")

    @property
    def ndim(self) -> int:
        """Number of core axes (2: matrix, 1: vector)."""
        return len(self.dims)

    @property
    def square(self) -> bool:
        return self.ndim == 2 and self.dims[0] == self.dims[1]

    def dims_for(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        """The dims with ``flip`` applied."""
        return self.dims[::-1] if self.flip and params.get(self.flip) else self.dims


@dataclass(frozen=True)
class Output:
    """An output with named core ``dims`` (``()``: one number per matrix); ``flip`` as for
    :class:`Arg`."""

    name: str
    dims: tuple[str, ...] = ("m", "n")
    flip: str | None = None

    @property
    def ndim(self) -> int:
        return len(self.dims)

    def dims_for(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        return self.dims[::-1] if self.flip and params.get(self.flip) else self.dims


@dataclass(frozen=True, eq=False)
class Operator:
    """A framework-neutral operator: signature, shape rule, derivative rules, testing entry.

    ``check(core_shapes, params)`` returns an error message (without the operator name) for a
    constraint the named dims cannot express, or ``None``. ``shape(core_shapes, params)``, when
    given, replaces the dims-based output shape rule (it returns the output core shapes or
    raises :class:`~xlinalg.core.shapes.ShapeError`). ``failure`` is the cause reported when an
    output comes out non-finite for finite inputs (``None``: non-finite outputs are IEEE
    results, not errors).

    Testing entry: ``grid`` maps a parameter name (or a tuple of names, varied together) to the
    values every test combines; ``reference(*arrays, **params)`` computes the outputs of one
    batch entry in float64 with NumPy/SciPy, independently of the rules; ``invariants(inputs,
    outputs, tol)`` lists ``(error / tol, message)`` for outputs defined only up to a convention;
    ``breaks(arrays, params)`` returns the arrays of one batch entry modified so the operator
    fails; ``condition(arrays, params)`` bounds the call's conditioning where the domains don't.
    ``jax_reverse="vjp"`` makes JAX use the core VJP rule through ``jax.custom_vjp`` instead of
    transposing the JVP (see ``docs/contributing.md``: it gives up forward mode and Hessians).
    """

    name: str
    args: tuple[Arg, ...]
    outputs: tuple[Output, ...]
    forward: Callable[..., tuple]
    jvp: Callable[..., tuple]
    vjp: Callable[..., tuple]
    params: Mapping[str, Any] = field(default_factory=dict)
    check: Callable[[tuple, Mapping[str, Any]], str | None] | None = None
    shape: Callable[[tuple, Mapping[str, Any]], tuple] | None = None
    failure: str | None = None
    summary: str = ""
    math: str = ""
    grid: Mapping[Any, tuple] = field(default_factory=dict)
    reference: Callable[..., tuple] | None = None
    invariants: Callable[..., list] | None = None
    breaks: Callable[..., tuple] | None = None
    condition: Callable[..., float] | None = None
    jax_reverse: str = "transpose"

    def __post_init__(self):
        if self.jax_reverse not in ("transpose", "vjp"):
            raise ValueError(f"{self.name}: jax_reverse must be 'transpose' or 'vjp'")
        for key in self.grid:
            for name in key if isinstance(key, tuple) else (key,):
                if name not in self.params:
                    raise ValueError(f"{self.name}: grid names unknown parameter {name!r}")

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

    def param_grid(self) -> list[dict]:
        """Every combination of the ``grid`` values, defaults filled in, in a fixed order."""
        import itertools

        keys = list(self.grid)
        combos = []
        for values in itertools.product(*(self.grid[k] for k in keys)):
            params = dict(self.params)
            for key, value in zip(keys, values):
                if isinstance(key, tuple):
                    params.update(zip(key, value))
                else:
                    params[key] = value
            combos.append(params)
        return combos

    def __repr__(self) -> str:
        return f"<xlinalg operator {self.name}>"


_REGISTRY: dict[str, Operator] = {}


def register(op: Operator) -> Operator:
    if op.name in _REGISTRY:
        raise ValueError(f"operator {op.name!r} registered twice")
    _REGISTRY[op.name] = op
    return op


def unregister(name: str) -> Operator:
    """Remove an operator from the registry (tests of the registry itself use this)."""
    return _REGISTRY.pop(name)


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
