"""The ``nan_policy`` check: how an operator with a declared failure treats a batch entry whose
input is not finite.

The policy (the same in every framework): an operator with a ``failure`` (potrf, potri,
potrs, trsm, inverse, ...) given a batch in which one entry holds NaN in the part the operator
reads (the named triangle of a symmetric or triangular argument)

- raises, eagerly, an ``xlinalg.LinAlgError`` naming the operator, the cause ("input contains
  NaN or inf") and that batch index — or what the backend's declared error contract
  (:class:`xlinalg_conformance.declarations.ErrorContract`) accepts instead; on a backend
  whose contract has failures as NaN (no eager errors: traced, e.g.
  ``jax_jit``) it returns that entry's outputs NaN in every element, the other entries equal to
  the float64 reference;
- under the backend's ``vmap`` (capability ``"vmap"``), where nothing can raise, returns the
  same NaN entry and the same other entries.

Operators without a failure keep IEEE semantics and are not applicable.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from . import reference as ref
from .checks import TOLERANCES, NotApplicable, Outcome, _worst, eps, rel_err, spec, to_backend, to_np
from .declarations import error_contract

#: order of the matrices, batch size, and the entry that holds the NaN
ORDER, BATCH, BAD = 4, 3, 1


def applies(op: str) -> bool:
    """Whether the check says anything about ``op``: it declares a failure."""
    return spec(op).failure is not None


def nan_inputs(op: str, seed: int = 11) -> tuple[tuple, tuple, dict, float]:
    """``(clean, bad, params, kappa)``: float64 NumPy inputs of ``op`` (default parameters),
    a batch of :data:`BATCH` of order :data:`ORDER` (dims shared with a square argument, and
    ``n``, have that size; the others 2); ``bad`` is ``clean`` with a NaN in entry
    :data:`BAD` of the first argument, inside the triangle the operator reads; ``kappa`` bounds
    the condition of the clean square arguments."""
    o = spec(op)
    params = dict(o.params)
    lower = o.lower(params)
    rng = np.random.default_rng(seed)
    square_dims = {a.dims_for(params)[0] for a in o.args if a.square}
    n, kappa, clean = ORDER, 1.0, []
    for arg in o.args:
        dims = arg.dims_for(params)
        shape = (BATCH, *(n if d in square_dims or d == "n" else 2 for d in dims))
        if arg.square and arg.structure == "triangular":
            x = 0.3 * rng.standard_normal(shape) + np.eye(n) * rng.uniform(2.0, 3.0, (BATCH, 1, n))
            x = np.tril(x) if lower else np.triu(x)
        elif arg.square:  # symmetric positive definite (also a well-conditioned general matrix)
            m = rng.standard_normal(shape)
            x = m @ np.swapaxes(m, -1, -2) + n * np.eye(n)
        else:
            x = rng.standard_normal(shape)
        if arg.square or arg is o.args[0]:
            kappa = max(kappa, float(np.max(np.linalg.cond(x))))
        clean.append(x)
    bad = [x.copy() for x in clean]
    rows, cols = bad[0].shape[-2:]
    row, col = (rows - 1, 0) if (lower or o.args[0].structure == "general") else (0, cols - 1)
    bad[0][BAD, row, col] = np.nan
    return tuple(clean), tuple(bad), params, kappa


def check_nan_policy(ctx, op: str) -> tuple[Outcome, list[str]]:
    """Feed ``op`` a batch of 3 whose entry 1 holds a NaN in its read triangle and compare with
    the backend's declared behaviour (see the module docstring). Returns the outcome and the
    list of skipped parts (as :func:`conformance.checks.check_errors`)."""
    if not applies(op):
        raise NotApplicable(f"{op} declares no failure: non-finite inputs are IEEE results")
    b = ctx.backend
    clean, bad, params, kappa = nan_inputs(op)
    with np.errstate(all="ignore"):
        want = ref.reference(op, params, *clean)
    tol = TOLERANCES["forward"] * eps("float64") * ORDER * kappa
    items, skipped = [], []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        contract = error_contract(b)
        if contract.failure_mode(op) != "nan":
            items.append(_eager(b, op, bad, params, contract))
        else:
            items += _nan_entry(b.call, "call", b, op, bad, params, want, tol)
        if ctx.has("vmap"):
            items += _nan_entry(b.vmap, "vmap", b, op, bad, params, want, tol)
        else:
            skipped.append(f"vmap: backend {b.name} lacks vmap")
    ratio, message = _worst(items)
    return Outcome(ratio, message if ratio > 1 or ratio != ratio else ""), skipped


def _eager(b, op, bad, params, contract) -> tuple[float, str]:
    """The call must raise the contract's ``LinAlgError`` (xlinalg's: naming the operator, the
    cause and the index), at the call or, with ``timing="async"``, by synchronization."""
    import xlinalg

    from .checks import late_message, raised

    exc = raised(b, op, to_backend(b, bad), params)
    if exc is None:
        return math.inf, f"no error raised for a NaN in batch entry {BAD}, expected LinAlgError"
    if late_message(exc):
        return math.inf, f"NaN in batch entry {BAD}: {late_message(exc)}"
    msg = str(exc)
    accepted = contract.accepted(xlinalg.LinAlgError)
    if getattr(exc, "raised_at_synchronize", False) and contract.timing != "async":
        return math.inf, f"{type(exc).__name__} raised only at synchronization, expected at the call"
    if not isinstance(exc, accepted):
        return math.inf, f"raised {type(exc).__name__} ({msg[:120]}), expected {' or '.join(t.__name__ for t in accepted)}"
    missing = [f for f in (f"{op}:", "NaN or inf", f"batch index ({BAD},)") if f not in msg] if contract.messages else []
    if missing:
        return math.inf, f"message {msg[:160]!r} does not name {', '.join(map(repr, missing))}"
    index = contract.reported_index(exc, (BATCH,))
    if index is not None and tuple(index) != (BAD,):
        return math.inf, f"the error reports batch index {index}, expected ({BAD},)"
    return 0.0, ""


def _nan_entry(run, how, b, op, bad, params, want, tol) -> list[tuple[float, str]]:
    """Without eager errors: every element of every output of entry :data:`BAD` NaN, the other
    entries equal to the reference (relative error within the forward tolerance)."""
    try:
        outs = to_np(b, run(op, to_backend(b, bad), params))
    except Exception as exc:
        return [(math.inf, f"{how}: raised {type(exc).__name__}: {str(exc)[:120]} (expected NaN in entry {BAD})")]
    items = []
    keep = [i for i in range(BATCH) if i != BAD]
    for o, y, r in zip(spec(op).outputs, outs, want):
        if y.shape != r.shape:
            items.append((math.inf, f"{how}: output {o.name} has shape {y.shape}, expected {r.shape}"))
            continue
        if not np.isnan(y[BAD]).all():
            count = int(np.sum(~np.isnan(y[BAD])))
            items.append((math.inf, f"{how}: output {o.name} of entry {BAD} has {count} element(s) that are not NaN"))
        e, idx = rel_err(y[keep], r[keep], o.ndim)
        where = f" at entry {keep[idx[0]]}" if idx else ""
        items.append((e / tol, f"{how}: output {o.name} differs from the reference{where} (relative {e:.2e}, tol {tol:.1e})"))
    return items
