"""What a backend declares about itself, and the one place where each declaration is read.

A backend is compared with xlinalg's conventions (``docs/conventions.md``). A framework's own
functions differ from them in ways its maintainers chose; declaring those differences turns
them from failures into reported, counted skips or conversions, so that what remains in the
table are defects. Every declaration is an attribute (or method) of the backend object with a
default that keeps the suite's behaviour for backends that declare nothing:

``unsupported``
    ``{operator: reason}``: operators the framework lacks. Every check of such an operator
    is reported as a declared skip (``decl``), the ``errors`` check included.
``error_contract``
    An :class:`ErrorContract`: which exception types count as the documented ``ValueError``,
    ``TypeError`` and ``xlinalg.LinAlgError``; whether numerical failures raise or come out
    as NaN; whether raised errors surface eagerly or asynchronously (at the latest by
    ``synchronize()``); how the batch index of a failure is reported; whether messages follow xlinalg's wording. ``None``
    (default): xlinalg's own contract, eager errors when the backend has the ``"errors"``
    capability and NaN entries when not.
``symmetric_gradient``
    How the gradient with respect to a symmetric argument is represented (one of
    :data:`SYMMETRIC_GRADIENTS`); the checks convert it to xlinalg's symmetric gradient.
``sample_restrictions``
    Names from :data:`RESTRICTIONS` (zero-size inputs, broadcast batches) the framework does
    not support; samples of those kinds are skipped and counted as declared. A backend may
    instead override ``sample_restriction(sample)``.
``known_failures``
    The path of a known-failures file (:mod:`xlinalg_conformance.known_failures`): listed
    operator × check cells that fail are reported as ``xfail``, those that pass as ``XPASS``.
``isolate``
    ``True`` runs every operator in its own process
    (:mod:`xlinalg_conformance.isolation`): a crash fails that operator's cells only.
``synchronize()``
    Called after every operation of an asynchronous framework
    (:mod:`xlinalg_conformance.synchronized`); with ``timing="async"`` in the error contract
    an error raised there counts as the operation's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Representations of the gradient with respect to a symmetric argument (read from one
#: triangle), and how each is converted to xlinalg's ``sym(G) = (G + Gᵀ)/2``:
SYMMETRIC_GRADIENTS = {
    # xlinalg's convention: a symmetric matrix, both triangles carrying half of each
    # off-diagonal derivative. Checked by ``structure``; used as is.
    "symmetric": "symmetric: sym(G) = (G + Gᵀ)/2 (xlinalg's convention)",
    # the gradient with respect to the entries of the triangle read: off-diagonal entries
    # counted twice, zero in the other triangle. ``structure`` checks the zero triangle; the
    # checks compare sym(G).
    "triangle": "the triangle read: off-diagonal entries doubled, zero in the other triangle",
    # any matrix whose symmetric part is the gradient (e.g. the gradient of a formula in the
    # full matrix). ``structure`` has nothing to check; the checks compare sym(G).
    "unsymmetrized": "any matrix whose symmetric part is the gradient",
}

#: Sample restrictions a backend may declare, with the samples each one excludes.
RESTRICTIONS = {
    "empty": "zero-size inputs (0 × 0 matrices, empty batches)",
    "empty_batch": "empty batches (a batch axis of length 0)",
    "broadcast": "batch axes broadcast between arguments",
}

#: How numerical failures (xlinalg.LinAlgError in the conventions) may show.
FAILURE_MODES = {
    "raise": "raised (at the call, or as late as the contract's timing allows)",
    "nan": "every output element of the failing batch entry non-finite, the others finite",
}

#: When raised errors (invalid input and numerical failures) may surface.
TIMINGS = {
    "eager": "at the call",
    "async": "at the call or at the latest by synchronize() (or when the outputs are read)",
}


class Declared(Exception):
    """A check or sample skipped because of a declaration (the message says which)."""


@dataclass(frozen=True)
class ErrorContract:
    """How a framework reports bad input, for the ``errors`` and ``nan_policy`` checks.

    Parameters
    ----------
    value_error, type_error, linalg_error : tuple of type
        Exception types accepted where the conventions require ``ValueError`` (ranks,
        shapes, batches), ``TypeError`` (dtypes, parameters, mixed libraries) and
        ``xlinalg.LinAlgError`` (numerical failures). ``linalg_error=None`` means
        ``(xlinalg.LinAlgError,)``.
    failures : str
        How numerical failures show (a key of :data:`FAILURE_MODES`), for every operator
        not named in ``failures_by_op``.
    failures_by_op : dict
        ``{operator: mode}`` for operators that differ from ``failures``.
    timing : str
        When raised errors surface (a key of :data:`TIMINGS`): ``"async"`` suits a framework
        whose engine runs an operation (and checks its input) after the call returned
        (MXNet): the error must come by the backend's ``synchronize()``.
    index : str or callable
        How the batch index of a failure is reported: ``"attribute"`` (``exc.index``, a
        tuple), ``"none"`` (not reported; not checked), or a function
        ``index(exc, batch_shape) -> tuple | None`` reading it from the exception.
    messages : bool
        Whether messages follow xlinalg's wording (name the operator, the shapes, the
        supported dtypes, the cause of a failure). When ``False`` only the exception type
        (and the index) is checked.
    """

    value_error: tuple = (ValueError,)
    type_error: tuple = (TypeError,)
    linalg_error: tuple | None = None
    failures: str = "raise"
    failures_by_op: dict = field(default_factory=dict)
    timing: str = "eager"
    index: object = "attribute"
    messages: bool = True

    def __post_init__(self):
        for op, mode in {None: self.failures, **self.failures_by_op}.items():
            if mode not in FAILURE_MODES:
                where = f" for {op}" if op else ""
                raise ValueError(f"ErrorContract: failures{where} is {mode!r}; expected one of {', '.join(FAILURE_MODES)}")
        if self.timing not in TIMINGS:
            raise ValueError(f"ErrorContract: timing is {self.timing!r}; expected one of {', '.join(TIMINGS)}")
        if not (callable(self.index) or self.index in ("attribute", "none")):
            raise ValueError(f"ErrorContract: index is {self.index!r}; expected 'attribute', 'none' or a function")

    def failure_mode(self, op: str) -> str:
        """How a numerical failure of ``op`` shows (a key of :data:`FAILURE_MODES`)."""
        return self.failures_by_op.get(op, self.failures)

    def accepted(self, expected: type) -> tuple:
        """The exception types that count as ``expected`` (``ValueError``, ``TypeError`` or
        ``xlinalg.LinAlgError``)."""
        import xlinalg

        if issubclass(expected, xlinalg.LinAlgError):
            return self.linalg_error or (xlinalg.LinAlgError,)
        if issubclass(expected, TypeError):
            return self.type_error
        return self.value_error

    def reported_index(self, exc: BaseException, batch_shape: tuple):
        """The batch index ``exc`` reports, or ``None`` when the contract says none is."""
        if self.index == "none":
            return None
        if self.index == "attribute":
            index = getattr(exc, "index", None)
            return tuple(index) if index is not None else ()
        return self.index(exc, batch_shape)


#: xlinalg's own contract (eager errors)
XLINALG_CONTRACT = ErrorContract()


def error_contract(backend) -> ErrorContract:
    """The backend's declared :class:`ErrorContract`, or xlinalg's: eager failures with the
    ``"errors"`` capability, NaN entries without it."""
    declared = getattr(backend, "error_contract", None)
    if declared is not None:
        return declared
    return XLINALG_CONTRACT if "errors" in getattr(backend, "capabilities", ()) else ErrorContract(failures="nan")


def unsupported(backend, op: str) -> str | None:
    """Why ``op`` is declared unsupported by ``backend``, or ``None``."""
    reason = dict(getattr(backend, "unsupported", None) or {}).get(op)
    return f"backend {backend.name} declares {op} unsupported: {reason}" if reason is not None else None


def symmetric_gradient(backend) -> str:
    """The backend's representation of symmetric-argument gradients (checked)."""
    kind = getattr(backend, "symmetric_gradient", "symmetric")
    if kind not in SYMMETRIC_GRADIENTS:
        raise ValueError(f"backend {backend.name}: symmetric_gradient is {kind!r}; expected one of {', '.join(SYMMETRIC_GRADIENTS)}")
    return kind


def to_symmetric(backend, op: str, grads: tuple) -> tuple:
    """NumPy gradients with respect to ``op``'s arguments, those of symmetric arguments
    converted from the backend's representation to xlinalg's ``sym(G)``."""
    if symmetric_gradient(backend) == "symmetric":
        return grads
    from xlinalg.core import operators

    args = operators()[op].args
    return tuple((g + np.swapaxes(g, -1, -2)) / 2 if a.structure == "symmetric" else g for g, a in zip(grads, args))


def restriction(backend, sample) -> str | None:
    """Why ``sample`` is excluded by the backend's declared restrictions, or ``None``."""
    custom = getattr(backend, "sample_restriction", None)
    if custom is not None:
        return custom(sample)
    return restriction_of(getattr(backend, "sample_restrictions", ()), sample, backend.name)


def restriction_of(names, sample, backend_name: str) -> str | None:
    """The first of the restrictions ``names`` (keys of :data:`RESTRICTIONS`) that excludes
    ``sample``, as a reason, or ``None``."""
    unknown = set(names) - set(RESTRICTIONS)
    if unknown:
        raise ValueError(f"backend {backend_name}: unknown sample restriction(s) {', '.join(sorted(unknown))}; expected some of {', '.join(RESTRICTIONS)}")
    if "empty" in names and any(x.size == 0 for x in sample.inputs):
        return f"backend {backend_name} declares no {RESTRICTIONS['empty']}"
    if "empty_batch" in names and 0 in sample.batch_shape:
        return f"backend {backend_name} declares no {RESTRICTIONS['empty_batch']}"
    if "broadcast" in names and _broadcasts(sample):
        return f"backend {backend_name} declares no {RESTRICTIONS['broadcast']}"
    return None


def _broadcasts(sample) -> bool:
    """Whether the arguments of ``sample`` have different batch shapes."""
    from xlinalg.core import operators

    args = operators()[sample.op].args
    shapes = {x.shape[: x.ndim - a.ndim] for x, a in zip(sample.inputs, args)}
    return len(shapes) > 1


def known_failures_path(backend):
    """The backend's declared known-failures file, or ``None``."""
    return getattr(backend, "known_failures", None)


def isolated(backend) -> bool:
    """Whether the backend declares that its operators must run in separate processes."""
    return bool(getattr(backend, "isolate", False))
