"""The checks: each compares one backend's behaviour on one sample (or one operator) with the
conventions (docs/conventions.md) and returns the worst error/tolerance ratio (pass: ratio ≤ 1).

Every tolerance is ``error / tolerance`` with the tolerance built from the dtype's machine
epsilon ``ε``, the size ``n`` of the problem and the sample's condition bound ``κ``; the
constants are in :data:`TOLERANCES` and explained in ``docs/conformance.md``.

Per-sample checks raise :class:`Skip` when the backend lacks a capability and
:class:`NotApplicable` when the sample does not exercise the check (e.g. ``batching`` on an
unbatched sample); the runner reports both.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from . import declarations
from . import reference as ref
from .samples import Sample, param_combos
from .synchronized import synchronized

#: Tolerance constants (see docs/conformance.md):
#: forward/adjoint/batching: ``C · ε · max(n, 1) · κ``;  fd_grad: ``C · κ²`` (float64, 4-point
#: central differences with a relative step ‖h v‖ = 1e-3 ‖x‖);  structure: ``C · ε · max(n, 1)``;
#: cross: ``C · κ`` in float64;  second_order: ``C · κ³`` (float64, finite differences of the VJP);
#: accumulate: ``C · ε · max(n, 1)`` (one addition to the backend's own VJP).
TOLERANCES = {
    "forward": 10.0,
    "adjoint": 10.0,
    "batching": 10.0,
    "fd_grad": 1e-9,
    "structure": 4.0,
    "cross": 1e-12,
    "second_order": 1e-9,
    "accumulate": 4.0,
}
FD_STEP = 1e-3

CHECKS = ("forward", "fd_grad", "adjoint", "structure", "second_order", "degenerate", "batching", "vmap", "dtype",
          "no_mutation", "accumulate", "errors", "nan_policy", "cross")
#: checks that run once per operator on their own inputs rather than on the samples (below)
OPERATOR_CHECKS: dict = {}


class Skip(Exception):
    """The backend lacks what the check needs (the reason is reported)."""


class NotApplicable(Exception):
    """The sample does not exercise the check."""


@dataclass
class Outcome:
    """Worst ``ratio`` (error/tolerance) of one check on one sample, and what it was."""

    ratio: float
    message: str = ""


@dataclass
class Context:
    """What a check needs besides the sample: the backend, and the reference backend for
    ``cross``."""

    backend: object
    reference: object = None

    def __post_init__(self):
        # each operation is followed by the backend's synchronize(): an asynchronous library's
        # deferred error is raised by the operation that caused it, not charged to a later one
        self.backend = synchronized(self.backend)
        self.reference = synchronized(self.reference)

    def has(self, capability: str) -> bool:
        return capability in getattr(self.backend, "capabilities", ())

    def need(self, *capabilities: str) -> None:
        missing = [c for c in capabilities if not self.has(c)]
        if missing:
            raise Skip(f"backend {self.backend.name} lacks {', '.join(missing)}")


# ---- helpers ---------------------------------------------------------------------------------
def spec(op: str):
    from xlinalg.core import operators

    return operators()[op]


def eps(dtype: str) -> float:
    return float(np.finfo(dtype).eps)


def n_eff(sample: Sample) -> int:
    return max([1, *[max(x.shape[-2:]) if x.ndim >= 1 and x.size else 0 for x in sample.inputs]])


def fwd_tol(sample: Sample, which: str = "forward") -> float:
    return TOLERANCES[which] * eps(sample.dtype) * n_eff(sample) * max(sample.kappa, 1.0)


def to_backend(backend, arrays):
    return tuple(backend.asarray(np.array(x, copy=True)) for x in arrays)


def to_np(backend, ys) -> tuple:
    return tuple(np.asarray(backend.to_numpy(y), dtype=np.float64) for y in ys)


def run_call(backend, op, arrays, params) -> tuple:
    return to_np(backend, backend.call(op, to_backend(backend, arrays), params))


def run_vjp(backend, op, arrays, params, cotangents, *, as_declared=False) -> tuple:
    """The backend's VJP in NumPy float64; gradients of symmetric arguments converted to
    xlinalg's ``sym(G)`` from the backend's declared representation, unless ``as_declared``."""
    g = to_np(backend, backend.vjp(op, to_backend(backend, arrays), params, to_backend(backend, cotangents)))
    return g if as_declared else declarations.to_symmetric(backend, op, g)


def run_jvp(backend, op, arrays, tangents, params) -> tuple:
    t = backend.jvp(op, to_backend(backend, arrays), to_backend(backend, tangents), params)
    return to_np(backend, t)


def direction(rng, x: np.ndarray, arg, lower: bool) -> np.ndarray:
    """A random direction in ``x``'s domain: symmetric for symmetric arguments, masked to the
    read triangle for triangular ones (entries of size ~1)."""
    v = rng.standard_normal(x.shape)
    if arg.structure == "symmetric":
        v = (v + np.swapaxes(v, -1, -2)) / 2
    elif arg.structure == "triangular":
        v = np.tril(v) if lower else np.triu(v)
    return v.astype(x.dtype)


def cotangents_for(rng, outputs, dtype) -> tuple:
    return tuple(rng.standard_normal(np.shape(y)).astype(dtype) for y in outputs)


def check_shapes(what, got, want) -> None:
    for i, (g, w) in enumerate(zip(got, want)):
        if tuple(np.shape(g)) != tuple(np.shape(w)):
            raise AssertionError(f"{what} {i} has shape {tuple(np.shape(g))}, expected {tuple(np.shape(w))}")
    if len(got) != len(want):
        raise AssertionError(f"{what}: {len(got)} arrays, expected {len(want)}")


def rel_err(y, r, core: int, scale=None) -> tuple[float, tuple]:
    """Worst per-batch-entry error ``max|y − r| / max(max|s|, 1e-2 · max|s| over the batch)``
    and the batch index where it occurs, with ``s = r`` unless ``scale`` (of ``r``'s shape)
    gives the magnitudes errors are relative to — for a sum, the sum of its terms' magnitudes,
    which bounds its rounding error however much the terms cancel. Non-finite values where
    ``r`` is finite count as infinite error."""
    y, r = np.asarray(y, np.float64), np.asarray(r, np.float64)
    if y.shape != r.shape:
        raise AssertionError(f"shape {y.shape}, expected {r.shape}")
    if r.size == 0:
        return 0.0, ()
    d = np.abs(y - r)
    d = np.where(np.isnan(d) & ~np.isnan(r), np.inf, d)
    d = np.where(np.isnan(d), 0.0, d)  # both NaN: equal
    axes = tuple(range(r.ndim - core, r.ndim))
    s = r if scale is None else np.asarray(scale, np.float64)
    a = np.where(np.isfinite(s), np.abs(s), 0.0)
    err = d.max(axis=axes) if core else d
    scale = a.max(axis=axes) if core else a
    floor = max(1e-2 * float(a.max()), np.finfo(np.float64).tiny)
    ratio = err / np.maximum(scale, floor)
    i = int(np.argmax(ratio))
    return float(np.ravel(ratio)[i]), tuple(int(k) for k in np.unravel_index(i, np.shape(ratio)))


def _where(idx) -> str:
    return f" at batch index {idx}" if idx else ""


def _worst(items):
    """The (ratio, message) with the largest ratio."""
    best = (0.0, "")
    for r, m in items:
        if not (r <= best[0]):  # NaN counts as worst
            best = (r if r == r else math.inf, m)
    return best


def inner(a, b) -> float:
    return float(np.sum(np.asarray(a, np.float64) * np.asarray(b, np.float64)))


def norm(a) -> float:
    return float(np.linalg.norm(np.ravel(np.asarray(a, np.float64))))


# ---- forward ---------------------------------------------------------------------------------
def check_forward(ctx: Context, s: Sample) -> Outcome:
    """Outputs against the float64 reference (computed from the sample's rounded inputs), and
    the operator's registry invariants (syevd's and gelqf's defining properties)."""
    outs = run_call(ctx.backend, s.op, s.inputs, s.params)
    refs = ref.reference(s.op, s.params, *s.inputs)
    check_shapes("output", outs, refs)
    tol = fwd_tol(s)
    items = []
    for o, y, r in zip(spec(s.op).outputs, outs, refs):
        if s.op == "slogdet" and o.name == "sign":
            bad = np.argwhere(y != r)
            items.append((math.inf if bad.size else 0.0, f"sign differs from the reference{_where(tuple(bad[0]) if bad.size else ())}"))
            continue
        e, idx = rel_err(y, r, o.ndim)
        items.append((e / tol, f"{o.name}: relative error {e:.2e} vs reference{_where(idx)} (tol {tol:.1e})"))
    invariants = spec(s.op).invariants
    if invariants is not None:
        items += invariants(s.inputs, outs, tol)
    return Outcome(*_worst(items))


# ---- finite differences ----------------------------------------------------------------------
#: outputs whose rows are fixed only by a sign rule, by operator: syevd's eigenvectors (each
#: row's largest-magnitude entry positive) flip sign where two entries of a row tie in
#: magnitude with opposite signs, a discontinuity a finite-difference step may cross
SIGN_FIXED_ROWS = {"syevd": "U"}


def _align_rows(op: str, arrays: tuple, base: tuple, outs: tuple) -> tuple:
    """``arrays`` (outputs, or cotangents of outputs) with each row of the
    :data:`SIGN_FIXED_ROWS` output multiplied by the sign that aligns that row of ``outs`` (a
    perturbed call) with the same row of ``base`` (the unperturbed call): the smooth branch
    through ``base``, which the derivatives at ``base`` describe. A cotangent so aligned gives
    the branch's VJP: flipping an output row flips the VJP of that row's cotangent."""
    names = [o.name for o in spec(op).outputs]
    k = names.index(SIGN_FIXED_ROWS[op])
    sign = np.sign(np.sum(outs[k] * base[k], axis=-1, keepdims=True))
    return tuple(np.where(sign < 0, -y, y) if j == k else y for j, y in enumerate(arrays))


def _fd(backend, s: Sample, i: int, v: np.ndarray, h: float, outs: tuple) -> tuple:
    """4-point central difference of every output along ``v`` in argument ``i``; sign-fixed
    rows (:data:`SIGN_FIXED_ROWS`) aligned with those of ``outs``, the unperturbed call's."""
    base = outs if s.op in SIGN_FIXED_ROWS else None

    def f(t):
        arrays = list(s.inputs)
        arrays[i] = s.inputs[i] + t * v
        outs = run_call(backend, s.op, arrays, s.params)
        return outs if base is None else _align_rows(s.op, outs, base, outs)

    p1, m1, p2, m2 = f(h), f(-h), f(2 * h), f(-2 * h)
    return tuple((8 * (a - b) - (c - d)) / (12 * h) for a, b, c, d in zip(p1, m1, p2, m2))


def check_fd_grad(ctx: Context, s: Sample) -> Outcome:
    """JVP and VJP against float64 finite differences of the backend's forward, argument by
    argument along a random direction in the argument's domain."""
    if s.dtype != "float64":
        raise NotApplicable("finite differences run in float64")
    if not (ctx.has("jvp") or ctx.has("vjp")):
        raise Skip(f"backend {ctx.backend.name} lacks vjp and jvp")
    op = spec(s.op)
    lower = op.lower(s.params)
    outs = run_call(ctx.backend, s.op, s.inputs, s.params)
    rng = s.rng("fd")
    u = cotangents_for(rng, outs, s.dtype)
    g = None
    if ctx.has("vjp"):
        g = run_vjp(ctx.backend, s.op, s.inputs, s.params, u)
        check_shapes("VJP of argument", g, s.inputs)
    tol = TOLERANCES["fd_grad"] * max(s.kappa, 1.0) ** 2
    items = []
    for i, (x, arg) in enumerate(zip(s.inputs, op.args)):
        if x.size == 0:
            continue
        v = scaled_per_entry(direction(rng, x, arg, lower), x, arg, lower)
        fd = _fd(ctx.backend, s, i, v, FD_STEP, outs)
        if ctx.has("jvp"):
            tangents = [np.zeros_like(y) for y in s.inputs]
            tangents[i] = v
            t = run_jvp(ctx.backend, s.op, s.inputs, tangents, s.params)
            check_shapes("JVP output", t, outs)
            overall = max([float(np.max(np.abs(f), initial=0.0)) for f in fd] + [0.0])
            for o, ti, fi in zip(op.outputs, t, fd):
                if fi.size == 0:
                    continue
                err = np.max(np.abs(ti - fi))
                den = max(np.max(np.abs(fi)), np.max(np.abs(ti)), 1e-6 * overall, 1e-300)
                err = err if np.isfinite(err) else math.inf
                items.append((err / den / tol, f"JVP of {o.name} along {arg.name}: relative error {err / den:.2e} vs finite differences (tol {tol:.1e})"))
        if g is not None:
            lhs, rhs, err = pairing_error(g[i], v, u, fd)
            if err is not None:
                items.append((err / tol, f"VJP of {arg.name}: <vjp(u), v> = {lhs:.6g} but finite differences give {rhs:.6g} (relative {err:.2e}, tol {tol:.1e})"))
    if not items:
        raise NotApplicable("empty inputs")
    return Outcome(*_worst(items))


def scaled_per_entry(v, x, arg, lower) -> np.ndarray:
    """``v`` rescaled so that in every batch entry its norm is that of the part of ``x`` read
    (1 where that is 0): a step ``FD_STEP · v`` is then the same relative step in every entry,
    however the entries' scales differ (one step for the whole batch is relatively larger in
    its smaller entries)."""
    axes = tuple(range(x.ndim - arg.ndim, x.ndim))
    read = read_part(np.asarray(x, np.float64), arg, lower)
    xs = np.sqrt(np.sum(read**2, axis=axes, keepdims=True))
    vs = np.sqrt(np.sum(np.asarray(v, np.float64) ** 2, axis=axes, keepdims=True))
    return (v * (np.where(xs > 0, xs, 1.0) / np.where(vs > 0, vs, 1.0))).astype(x.dtype)


def read_part(x, arg, lower):
    """The part of ``x`` an operator reads: all of it, or the named triangle of a symmetric or
    triangular argument (the other triangle zero)."""
    if arg.structure == "general":
        return x
    return np.tril(x) if lower else np.triu(x)


def read_norm(x, arg, lower) -> float:
    """``‖x‖``, the Frobenius norm over the part of ``x`` that is read (1 where that is 0): the
    scale of ``second_order``'s second-order terms."""
    return norm(read_part(x, arg, lower)) or 1.0


def pairing_error(g, v, u, t):
    """``(⟨g, v⟩, Σ ⟨u_k, t_k⟩, relative difference)``: a VJP ``g`` paired with a direction ``v``
    against output cotangents ``u`` paired with output tangents ``t`` (from a JVP or finite
    differences). The difference is ``None`` when every norm is zero, ``inf`` if not finite."""
    lhs, rhs = inner(g, v), sum(inner(ui, ti) for ui, ti in zip(u, t))
    den = norm(g) * norm(v) + sum(norm(ui) * norm(ti) for ui, ti in zip(u, t))
    if den == 0:
        return lhs, rhs, None
    err = abs(lhs - rhs) / den
    return lhs, rhs, err if np.isfinite(err) else math.inf


# ---- adjoint ---------------------------------------------------------------------------------
def check_adjoint(ctx: Context, s: Sample) -> Outcome:
    """⟨vjp(u), v⟩ = ⟨u, jvp(v)⟩ per argument, in the sample's dtype."""
    ctx.need("vjp", "jvp")
    op = spec(s.op)
    lower = op.lower(s.params)
    outs = run_call(ctx.backend, s.op, s.inputs, s.params)
    rng = s.rng("adjoint")
    u = cotangents_for(rng, outs, s.dtype)
    g = run_vjp(ctx.backend, s.op, s.inputs, s.params, u)
    check_shapes("VJP of argument", g, s.inputs)
    tol = fwd_tol(s, "adjoint")
    items = []
    for i, (x, arg) in enumerate(zip(s.inputs, op.args)):
        v = direction(rng, x, arg, lower)
        tangents = [np.zeros_like(y) for y in s.inputs]
        tangents[i] = v
        t = run_jvp(ctx.backend, s.op, s.inputs, tangents, s.params)
        check_shapes("JVP output", t, outs)
        lhs, rhs, err = pairing_error(g[i], v, u, t)
        if err is None:
            continue
        items.append((err / tol, f"argument {arg.name}: <vjp(u), v> = {lhs:.6g}, <u, jvp(v)> = {rhs:.6g} (relative {err:.2e}, tol {tol:.1e})"))
    if not items:
        raise NotApplicable("empty inputs")
    return Outcome(*_worst(items))


# ---- structure -------------------------------------------------------------------------------
def check_structure(ctx: Context, s: Sample) -> Outcome:
    """Gradients of symmetric arguments are symmetric, of triangular ones masked to the read
    triangle. A tangent supported in the unread triangle changes nothing for a triangular
    argument; for a symmetric one it acts exactly as its mirror image in the read triangle (the
    JVP depends on the tangent only through ``sym(dA)``, the adjoint of the symmetric
    gradient — a JVP that ignores that triangle, or reads it unsymmetrized, fails)."""
    op = spec(s.op)
    structured = [i for i, a in enumerate(op.args) if a.structure != "general"]
    if not structured:
        raise NotApplicable("no structured argument")
    if not (ctx.has("vjp") or ctx.has("jvp")):
        raise Skip(f"backend {ctx.backend.name} lacks vjp and jvp")
    lower = op.lower(s.params)
    tol = TOLERANCES["structure"] * eps(s.dtype) * n_eff(s)
    outs = run_call(ctx.backend, s.op, s.inputs, s.params)
    rng = s.rng("structure")
    items = []
    declared = declarations.symmetric_gradient(ctx.backend)
    if ctx.has("vjp"):
        g = run_vjp(ctx.backend, s.op, s.inputs, s.params, cotangents_for(rng, outs, s.dtype), as_declared=True)
        check_shapes("VJP of argument", g, s.inputs)
        for i in structured:
            gi, arg = g[i], op.args[i]
            scale = float(np.max(np.abs(gi), initial=0.0)) or 1.0
            if arg.structure == "symmetric" and declared == "unsymmetrized":
                continue  # any matrix with the right symmetric part (the other checks compare it)
            if arg.structure == "symmetric" and declared == "symmetric":
                e = float(np.max(np.abs(gi - np.swapaxes(gi, -1, -2)), initial=0.0)) / scale
                items.append((e / tol, f"gradient of symmetric {arg.name} is not symmetric: max|G − Gᵀ|/max|G| = {e:.2e} (tol {tol:.1e})"))
            else:  # triangular, or symmetric declared as the gradient of the triangle read
                outside = gi - (np.tril(gi) if lower else np.triu(gi))
                e = float(np.max(np.abs(outside), initial=0.0)) / scale
                side = "upper" if lower else "lower"
                what = "triangular" if arg.structure == "triangular" else "symmetric (declared: the triangle read)"
                items.append((e / tol, f"gradient of {what} {arg.name} is not masked: max over the {side} triangle {e:.2e} (tol {tol:.1e})"))
    if ctx.has("jvp"):
        for i in structured:
            arg = op.args[i]
            if s.inputs[i].shape[-1] < 2:
                continue
            v = rng.standard_normal(s.inputs[i].shape)
            v = (np.triu(v, 1) if lower else np.tril(v, -1)).astype(s.dtype)
            t = _jvp_along(ctx, s, i, v)
            if arg.structure == "triangular":
                e = max(float(np.max(np.abs(ti), initial=0.0)) for ti in t)
                items.append((math.inf if e > 0 else 0.0, f"a tangent in the unread triangle of {arg.name} changes the JVP (max {e:.2e})"))
                continue
            mirror = _jvp_along(ctx, s, i, np.swapaxes(v, -1, -2))
            for o, ti, mi in zip(op.outputs, t, mirror):
                e, idx = rel_err(ti, mi, o.ndim)
                items.append((e / tol, f"a tangent in the unread triangle of symmetric {arg.name} changes the JVP of {o.name} "
                                       f"unlike its mirror image in the read triangle{_where(idx)} (relative {e:.2e}, tol {tol:.1e}): "
                                       f"the JVP must depend on the tangent through sym(d{arg.name}) only"))
    if not items:
        if declared == "unsymmetrized" and any(op.args[i].structure == "symmetric" for i in structured):
            raise declarations.Declared(f"backend {ctx.backend.name} declares unsymmetrized gradients of symmetric arguments")
        raise NotApplicable("nothing to check")
    return Outcome(*_worst(items))


def _jvp_along(ctx: Context, s: Sample, i: int, v) -> tuple:
    """The backend's JVP of ``s`` along ``v`` in argument ``i`` (zero tangents elsewhere)."""
    tangents = [np.zeros_like(y) for y in s.inputs]
    tangents[i] = v
    return run_jvp(ctx.backend, s.op, s.inputs, tangents, s.params)


# ---- gradient accumulation ---------------------------------------------------------------------
def check_accumulate(ctx: Context, s: Sample) -> Outcome:
    """Accumulating gradients (torch's ``.grad``, MXNet's ``grad_req="add"``): buffers that
    already hold a value receive ``initial + vjp(u)`` — the new gradient is added, neither
    dropped nor written over the old value."""
    ctx.need("accumulate", "vjp")
    op = spec(s.op)
    b = ctx.backend
    outs = run_call(b, s.op, s.inputs, s.params)
    rng = s.rng("accumulate")
    u = cotangents_for(rng, outs, s.dtype)
    g = run_vjp(b, s.op, s.inputs, s.params, u, as_declared=True)  # as the buffers hold it
    check_shapes("VJP of argument", g, s.inputs)
    # initial values of the gradient's size, so that losing either part shows
    size = max([float(np.max(np.abs(gi), initial=0.0)) for gi in g] + [1.0])
    initial = tuple((size * rng.standard_normal(x.shape)).astype(s.dtype) for x in s.inputs)
    acc = to_np(b, b.accumulate_vjp(s.op, to_backend(b, s.inputs), s.params, to_backend(b, u), to_backend(b, initial)))
    check_shapes("accumulated gradient of argument", acc, s.inputs)
    tol = TOLERANCES["accumulate"] * eps(s.dtype) * n_eff(s)
    items = []
    for a, x0, gi, ai in zip(op.args, initial, g, acc):
        e, idx = rel_err(ai, x0 + gi, a.ndim)
        what = "does not hold initial + vjp"
        if e > tol and gi.size and np.any(gi != 0):
            if np.array_equal(ai, x0.astype(np.float64)):
                what = "kept only its initial value (the new gradient was dropped)"
            elif rel_err(ai, gi, a.ndim)[0] <= tol:
                what = "holds only the new gradient (the initial value was overwritten)"
        items.append((e / tol, f"gradient buffer of {a.name} {what}{_where(idx)}: relative error {e:.2e} (tol {tol:.1e})"))
    if not items:
        raise NotApplicable("no array argument")
    return Outcome(*_worst(items))


# ---- batching --------------------------------------------------------------------------------
def _entries(s: Sample, arrays):
    """The broadcast batch shape and a function giving the arrays of one batch entry."""
    op = spec(s.op)
    batch = s.batch_shape
    full = [np.broadcast_to(x, batch + x.shape[x.ndim - a.ndim:]) for x, a in zip(arrays, op.args)]
    return batch, lambda idx: tuple(np.array(x[idx], copy=True) for x in full)


def _sum_to_shape(g, shape):
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def check_batching(ctx: Context, s: Sample) -> Outcome:
    """The batched call (and its VJP/JVP, gradients of broadcast inputs summed back) equals
    the loop over the batch entries."""
    batch = s.batch_shape
    if not batch:
        raise NotApplicable("unbatched sample")
    op = spec(s.op)
    b = ctx.backend
    outs = run_call(b, s.op, s.inputs, s.params)
    rng = s.rng("batching")
    u = cotangents_for(rng, outs, s.dtype)
    lower = op.lower(s.params)
    v = [direction(rng, x, a, lower) for x, a in zip(s.inputs, op.args)]
    g = run_vjp(b, s.op, s.inputs, s.params, u) if ctx.has("vjp") else None
    t = run_jvp(b, s.op, s.inputs, v, s.params) if ctx.has("jvp") else None
    refs = ref.reference(s.op, s.params, *s.inputs)
    check_shapes("batched output", outs, refs)
    if g is not None:
        check_shapes("VJP of argument", g, s.inputs)
    if t is not None:
        check_shapes("JVP output", t, outs)
    tol = fwd_tol(s, "batching")
    entry, entry_v = _entries(s, s.inputs)[1], _entries(s, v)[1]
    items = []
    g_sum = [np.zeros(batch + x.shape[x.ndim - a.ndim:]) for x, a in zip(s.inputs, op.args)]
    for idx in np.ndindex(*batch):
        xs = entry(idx)
        ys = run_call(b, s.op, xs, s.params)
        for o, y, yb in zip(op.outputs, ys, outs):
            e, _ = rel_err(yb[idx], y, o.ndim)
            items.append((e / tol, f"output {o.name} of batch entry {idx} differs from the unbatched call (relative {e:.2e}, tol {tol:.1e})"))
        if g is not None:
            gi = run_vjp(b, s.op, xs, s.params, tuple(np.array(ui[idx]) for ui in u))
            for acc, gg in zip(g_sum, gi):
                acc[idx] = gg
        if t is not None:
            ti = run_jvp(b, s.op, xs, entry_v(idx), s.params)
            for o, y, yb in zip(op.outputs, ti, t):
                e, _ = rel_err(yb[idx], y, o.ndim)
                items.append((e / tol, f"JVP of {o.name} at batch entry {idx} differs from the unbatched JVP (relative {e:.2e}, tol {tol:.1e})"))
    if g is not None:
        for a, x, gb, acc in zip(op.args, s.inputs, g, g_sum):
            expect = _sum_to_shape(acc, x.shape)
            # summed over broadcast axes: relative to the sum of the entries' magnitudes
            e, idx = rel_err(gb, expect, a.ndim, scale=_sum_to_shape(np.abs(acc), x.shape))
            items.append((e / tol, f"VJP of {a.name} differs from the sum of unbatched VJPs{_where(idx)} (relative {e:.2e}, tol {tol:.1e})"))
    return Outcome(*_worst(items))


def check_vmap(ctx: Context, s: Sample) -> Outcome:
    """``vmap`` over the leading batch axis equals the batched call."""
    ctx.need("vmap")
    if s.batch != "(3,)":
        raise NotApplicable("vmap runs on samples with batch (3,) in every argument")
    outs = run_call(ctx.backend, s.op, s.inputs, s.params)
    mapped = to_np(ctx.backend, ctx.backend.vmap(s.op, to_backend(ctx.backend, s.inputs), s.params))
    check_shapes("vmap output", mapped, outs)
    tol = fwd_tol(s, "batching")
    items = []
    for o, y, r in zip(spec(s.op).outputs, mapped, outs):
        e, idx = rel_err(y, r, o.ndim)
        items.append((e / tol, f"vmap output {o.name} differs from the batched call{_where(idx)} (relative {e:.2e})"))
    return Outcome(*_worst(items))


# ---- dtype and device --------------------------------------------------------------------------
def check_dtype(ctx: Context, s: Sample) -> Outcome:
    """Outputs, VJPs and JVPs have the input dtype (and device)."""
    b = ctx.backend
    xs = to_backend(b, s.inputs)
    device = b.device(xs[0])
    outs = b.call(s.op, xs, s.params)
    problems = []

    def look(what, ys):
        for k, y in enumerate(ys):
            d = b.dtype_name(y)
            if d != s.dtype:
                problems.append(f"{what} {k} has dtype {d}, input {s.dtype}")
            if device is not None and b.device(y) != device:
                problems.append(f"{what} {k} is on device {b.device(y)}, input on {device}")

    look("output", outs)
    rng = s.rng("dtype")
    if ctx.has("vjp"):
        u = cotangents_for(rng, to_np(b, outs), s.dtype)
        look("VJP of argument", b.vjp(s.op, to_backend(b, s.inputs), s.params, to_backend(b, u)))
    if ctx.has("jvp"):
        op = spec(s.op)
        v = [direction(rng, x, a, op.lower(s.params)) for x, a in zip(s.inputs, op.args)]
        look("JVP output", b.jvp(s.op, to_backend(b, s.inputs), to_backend(b, v), s.params))
    return Outcome(math.inf if problems else 0.0, "; ".join(problems[:3]))


# ---- no mutation -----------------------------------------------------------------------------
def check_no_mutation(ctx: Context, s: Sample) -> Outcome:
    """Inputs, cotangents and tangents are unchanged by the call, the VJP and the JVP."""
    b = ctx.backend
    xs = to_backend(b, s.inputs)
    before = [b.to_numpy(x) for x in xs]
    problems = []

    def same(what, arrays, snapshot):
        for k, (x, x0) in enumerate(zip(arrays, snapshot)):
            now = b.to_numpy(x)
            if not np.array_equal(now, x0, equal_nan=True):
                problems.append(f"{what} {k} was modified")
                snapshot[k] = now  # report each stage's own modifications

    outs = b.call(s.op, xs, s.params)
    same("input (forward)", xs, before)
    rng = s.rng("mutation")
    op = spec(s.op)
    if ctx.has("vjp"):
        us = to_backend(b, cotangents_for(rng, to_np(b, outs), s.dtype))
        u0 = [b.to_numpy(u) for u in us]
        b.vjp(s.op, xs, s.params, us)
        same("input (VJP)", xs, before)
        same("cotangent", us, u0)
    if ctx.has("jvp"):
        vs = to_backend(b, [direction(rng, x, a, op.lower(s.params)) for x, a in zip(s.inputs, op.args)])
        v0 = [b.to_numpy(v) for v in vs]
        b.jvp(s.op, xs, vs, s.params)
        same("input (JVP)", xs, before)
        same("tangent", vs, v0)
    return Outcome(math.inf if problems else 0.0, "; ".join(problems))


# ---- cross-backend agreement -----------------------------------------------------------------
def check_cross(ctx: Context, s: Sample) -> Outcome:
    """Outputs, JVPs and VJPs agree with the reference backend (float64)."""
    other = ctx.reference
    if other is None:
        raise Skip("no reference backend given")
    if other.name == ctx.backend.name:
        raise Skip(f"backend {ctx.backend.name} is the reference")
    if s.dtype != "float64":
        raise NotApplicable("cross-backend agreement is checked in float64")
    op = spec(s.op)
    tol = TOLERANCES["cross"] * max(s.kappa, 1.0)
    a = run_call(ctx.backend, s.op, s.inputs, s.params)
    r = run_call(other, s.op, s.inputs, s.params)
    check_shapes("output", a, r)
    items = []
    for o, y, z in zip(op.outputs, a, r):
        e, idx = rel_err(y, z, o.ndim)
        items.append((e / tol, f"output {o.name} differs from {other.name}{_where(idx)} (relative {e:.2e}, tol {tol:.1e})"))
    rng = s.rng("cross")
    both = lambda c: ctx.has(c) and c in getattr(other, "capabilities", ())  # noqa: E731
    if both("jvp"):
        v = [direction(rng, x, arg, op.lower(s.params)) for x, arg in zip(s.inputs, op.args)]
        for o, y, z in zip(op.outputs, run_jvp(ctx.backend, s.op, s.inputs, v, s.params), run_jvp(other, s.op, s.inputs, v, s.params)):
            e, idx = rel_err(y, z, o.ndim)
            items.append((e / tol, f"JVP of {o.name} differs from {other.name}{_where(idx)} (relative {e:.2e}, tol {tol:.1e})"))
    if both("vjp"):
        u = cotangents_for(rng, a, s.dtype)
        for arg, y, z in zip(op.args, run_vjp(ctx.backend, s.op, s.inputs, s.params, u), run_vjp(other, s.op, s.inputs, s.params, u)):
            e, idx = rel_err(y, z, arg.ndim)
            items.append((e / tol, f"VJP of {arg.name} differs from {other.name}{_where(idx)} (relative {e:.2e}, tol {tol:.1e})"))
    return Outcome(*_worst(items))


# ---- second order --------------------------------------------------------------------------
def check_second_order(ctx: Context, s: Sample) -> Outcome:
    """Reverse over reverse: ``⟨∇ₓ⟨vjp(x)(u), w⟩, v⟩`` equals the finite difference of
    ``⟨vjp(x + t v)(u), w⟩`` (the backend's own VJP), per argument, in float64."""
    if s.dtype != "float64":
        raise NotApplicable("second derivatives are checked in float64")
    ctx.need("second_order", "vjp")
    op = spec(s.op)
    lower = op.lower(s.params)
    b = ctx.backend
    outs = run_call(b, s.op, s.inputs, s.params)
    rng = s.rng("second_order")
    u = cotangents_for(rng, outs, s.dtype)
    w = [direction(rng, x, a, lower) for x, a in zip(s.inputs, op.args)]
    hv = to_np(b, b.grad_of_vjp(s.op, to_backend(b, s.inputs), s.params, to_backend(b, u), to_backend(b, w)))
    check_shapes("second-order gradient of argument", hv, s.inputs)
    g0 = run_vjp(b, s.op, s.inputs, s.params, u)
    first = sum(norm(gj) * norm(wj) for gj, wj in zip(g0, w))
    tol = TOLERANCES["second_order"] * max(s.kappa, 1.0) ** 3
    items = []
    for i, (x, arg) in enumerate(zip(s.inputs, op.args)):
        if x.size == 0:
            continue
        # a step relative to each batch entry: the difference's truncation error, ∝ (h/‖xₖ‖)⁴,
        # is then the same at every magnitude. Fuzzing found both weaker steps: one floored at 1
        # (a potrs factor of 0.43: 1.14 × the tolerance) and one relative to the whole batch
        # (larger in its smaller entries: 1.18 ×)
        v = scaled_per_entry(direction(rng, x, arg, lower), x, arg, lower)
        scale = read_norm(x, arg, lower)
        h = FD_STEP

        def phi(t):
            arrays = list(s.inputs)
            arrays[i] = s.inputs[i] + t * v
            ut = u if s.op not in SIGN_FIXED_ROWS else _align_rows(s.op, u, outs, run_call(b, s.op, arrays, s.params))
            return sum(inner(gj, wj) for gj, wj in zip(run_vjp(b, s.op, arrays, s.params, ut), w))

        fd = (8 * (phi(h) - phi(-h)) - (phi(2 * h) - phi(-2 * h))) / (12 * h)
        lhs = inner(hv[i], v)
        # natural scale of a second-order term: ‖vjp‖ ‖w‖ ‖v‖ / ‖x‖ (covers operators that are
        # linear in x, whose exact second derivative 0 the difference only meets to rounding)
        den = max(norm(hv[i]) * norm(v), abs(fd), first * norm(v) / scale, 1e-300)
        err = abs(lhs - fd) / den
        err = err if np.isfinite(err) else math.inf
        items.append((err / tol, f"argument {arg.name}: <d/dx <vjp(u), w>, v> = {lhs:.6g}, finite differences {fd:.6g} (relative {err:.2e}, tol {tol:.1e})"))
    if not items:
        raise NotApplicable("empty inputs")
    return Outcome(*_worst(items))


# ---- degenerate eigenvalues ------------------------------------------------------------------
def degenerate_inputs() -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """``(label, A, space)``: symmetric matrices with repeated eigenvalues and an isolated
    largest one — diag(1, 1, 2), a rotation of it, a batch mixing diag(3, 3, 3, 7), a rotated
    diag(−1, 2, 2, 5) and a non-degenerate rotated diag(−1, 0.5, 2, 5) — and 3 I.

    ``space`` (0/1 over the ascending eigenvalues, per batch entry) selects a whole repeated
    eigenspace (two eigenvalues in the non-degenerate entry): its projector is differentiable
    although its eigenvectors are not. ``None`` for 3 I, whose only eigenspace is everything
    (a constant projector, no isolated eigenvector): only eigenvalue losses apply there."""
    from xlinalg.core.samples import orthogonal

    rng = np.random.default_rng(5)

    q3, q4 = orthogonal(rng, (), 3), orthogonal(rng, (), 4)
    rot = q3 @ np.diag([1.0, 1.0, 2.0]) @ q3.T
    batch = np.stack([np.diag([3.0, 3.0, 3.0, 7.0]), q4 @ np.diag([-1.0, 2.0, 2.0, 5.0]) @ q4.T,
                      q4 @ np.diag([-1.0, 0.5, 2.0, 5.0]) @ q4.T])
    pair = np.array([1.0, 1.0, 0.0])
    spaces = np.array([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0]])
    return [("diag(1, 1, 2)", np.diag([1.0, 1.0, 2.0]), pair), ("rotated diag(1, 1, 2)", rot, pair),
            ("batch of 3", batch, spaces), ("3 I", 3.0 * np.eye(3), None)]


@dataclass(frozen=True)
class SpectralLoss:
    """A loss of syevd's outputs ``(U, λ)`` (eigenvectors as rows): ``Σ exp λ`` when
    ``eigenvalues``, plus ``⟨W, P⟩`` for the projector ``P = Σ_k space_k u_k u_kᵀ`` when
    ``space`` (0/1 per eigenvalue) is given. Both are smooth functions of ``A`` wherever the
    selected eigenvalues are separated from the others, repeated or not."""

    name: str
    eigenvalues: bool
    space: np.ndarray | None = None

    def value(self, w, u, lam) -> float:
        total = float(np.sum(np.exp(lam))) if self.eigenvalues else 0.0
        if self.space is not None:
            total += float(np.sum(w * np.einsum("...k,...ki,...kj->...ij", self.space, u, u)))
        return total

    def cotangents(self, w, u, lam) -> tuple:
        """``(Ū, λ̄)``, ``None`` for an output the loss does not use."""
        gu = None if self.space is None else self.space[..., :, None] * (u @ (w + np.swapaxes(w, -1, -2)))
        return gu, (np.exp(lam) if self.eigenvalues else None)

    def derivative(self, w, u, lam, du, dlam) -> float:
        """The loss's derivative from the output tangents ``(dU, dλ)``."""
        total = float(np.sum(np.exp(lam) * dlam)) if self.eigenvalues else 0.0
        if self.space is not None:
            dp = np.einsum("...k,...ki,...kj->...ij", self.space, du, u)
            total += float(np.sum(w * (dp + np.swapaxes(dp, -1, -2))))
        return total

    def sensitivity(self, lam) -> float:
        """``max|λ| / gap`` between the selected eigenvalues and the others (1 without a
        projector: a symmetric function of λ is smooth everywhere)."""
        if self.space is None:
            return 1.0
        sel = self.space.astype(bool)
        gaps = np.abs(lam[..., :, None] - lam[..., None, :])
        gaps = np.where(sel[..., :, None] & ~sel[..., None, :], gaps, np.inf).min(axis=(-2, -1))
        return float(np.max(np.max(np.abs(lam), axis=-1) / gaps))


def spectral_losses(space) -> list[SpectralLoss]:
    """The losses :func:`check_degenerate` differentiates: of the eigenvalues only, of the top
    eigenvector's projector only, of a repeated eigenspace's projector only (each leaving an
    output unused), and of eigenvalues and eigenspace together."""
    losses = [SpectralLoss("Σ exp(λ)", True)]
    if space is not None:
        top = np.zeros_like(space)
        top[..., -1] = 1.0
        losses += [SpectralLoss("⟨W, u uᵀ⟩ of the top eigenvector", False, top),
                   SpectralLoss("⟨W, P⟩ of the repeated eigenspace", False, space),
                   SpectralLoss("Σ exp(λ) + ⟨W, P⟩ of the repeated eigenspace", True, space)]
    return losses


def run_partial_vjp(backend, op, arrays, params, cotangents) -> tuple:
    """The backend's VJP of a loss that uses only the outputs whose cotangent is not ``None``."""
    cts = tuple(None if g is None else backend.asarray(np.array(g, copy=True)) for g in cotangents)
    g = to_np(backend, backend.partial_vjp(op, to_backend(backend, arrays), params, cts))
    return declarations.to_symmetric(backend, op, g)


def check_degenerate(ctx: Context, op: str) -> tuple[Outcome, list[str]]:
    """syevd at repeated eigenvalues: JVP and VJP finite (float32 and float64) and exact,
    against finite differences of the backend's forward, for losses of the eigenvalues, of the
    top eigenvector's projector, of a repeated eigenspace's projector and of both outputs
    (:func:`spectral_losses`). A loss that leaves an output unused is differentiated as a user
    would — backward from the used output alone (``partial_vjp``), not with zero cotangents.
    Returns the outcome and the parts skipped for a missing capability."""
    if op != "syevd":
        raise NotApplicable("only syevd has eigenvalues")
    if not (ctx.has("vjp") or ctx.has("jvp")):
        raise Skip(f"backend {ctx.backend.name} lacks vjp and jvp")
    b = ctx.backend
    items, skipped = [], set()
    for label, a, space in degenerate_inputs():
        n = a.shape[-1]
        rng = np.random.default_rng(n)
        w = rng.standard_normal(a.shape)
        v = rng.standard_normal(a.shape)
        v = (v + np.swapaxes(v, -1, -2)) / 2
        v /= norm(v)
        losses = spectral_losses(space)

        def values(x):
            u, lam = run_call(b, "syevd", (x,), {})
            return np.array([loss.value(w, u, lam) for loss in losses])

        h = FD_STEP * norm(a)
        fds = (8 * (values(a + h * v) - values(a - h * v)) - (values(a + 2 * h * v) - values(a - 2 * h * v))) / (12 * h)
        kappa = max(loss.sensitivity(np.linalg.eigvalsh(a)) for loss in losses)
        for dtype in ("float32", "float64"):
            # float64: the finite-difference tolerance; float32: its rounding, 10 ε n κ
            tol = TOLERANCES["fd_grad"] * kappa**2 if dtype == "float64" else TOLERANCES["adjoint"] * eps(dtype) * n * kappa
            x = a.astype(dtype)
            # the outputs in this dtype: the basis of a repeated eigenspace is arbitrary, and
            # cotangents and output tangents refer to the one this call chose
            u, lam = run_call(b, "syevd", (x,), {})
            if ctx.has("jvp"):
                du, dl = run_jvp(b, "syevd", (x,), (v.astype(dtype),), {})
                if not (np.all(np.isfinite(du)) and np.all(np.isfinite(dl))):
                    items.append((math.inf, f"{label}, {dtype}: JVP is not finite"))
                else:
                    for loss, fd in zip(losses, fds):
                        e = abs(loss.derivative(w, u, lam, du, dl) - fd) / (abs(fd) + 1e-300)
                        items.append((e / tol, f"{label}, {dtype}: JVP of {loss.name} is off by {e:.2e} relative to finite differences (tol {tol:.1e})"))
            if not ctx.has("vjp"):
                continue
            for loss, fd in zip(losses, fds):
                cts = tuple(None if c is None else c.astype(dtype) for c in loss.cotangents(w, u, lam))
                if all(c is not None for c in cts):
                    g = run_vjp(b, "syevd", (x,), {}, cts)[0]
                elif ctx.has("partial_vjp"):
                    g = run_partial_vjp(b, "syevd", (x,), {}, cts)[0]
                else:
                    skipped.add(f"VJPs of losses that leave an output unused: backend {b.name} lacks partial_vjp")
                    continue
                if not np.all(np.isfinite(g)):
                    items.append((math.inf, f"{label}, {dtype}: VJP of {loss.name} is not finite"))
                    continue
                e = abs(inner(g, v) - fd) / max(abs(fd) + 1e-300, norm(g) * 1e-3)
                items.append((e / tol, f"{label}, {dtype}: VJP of {loss.name} is off by {e:.2e} relative to finite differences (tol {tol:.1e})"))
    return Outcome(*_worst(items)), sorted(skipped)


# ---- errors ----------------------------------------------------------------------------------
@dataclass
class ErrorCase:
    """Bad input: ``arrays`` (NumPy), ``params``; expected exception type, text fragments the
    message must contain, and for :class:`xlinalg.LinAlgError` the batch ``index``."""

    label: str
    arrays: tuple
    params: dict
    expected: type
    fragments: tuple = ()
    index: tuple | None = None
    foreign: int | None = None  # which argument to pass as another library's array


def _good_inputs(op: str, dtype="float64"):
    """Valid unbatched inputs of order 4 (drawn from the arguments' domains)."""
    from xlinalg.core.samples import draw

    params = param_combos(op)[0]
    arrays, _ = draw(spec(op), np.random.default_rng(7), [()], 4, params)
    return [np.asarray(x, dtype) for x in arrays], params


def _rejected_shapes(o, good, params) -> list[tuple[str, tuple, dict]]:
    """Bad shapes and parameters derived from the registry's shape rule: each argument's core
    shape with one axis one longer or shorter, or its axes swapped, and each integer parameter
    set to the matrix order; those the rule rejects (at most two per argument)."""
    from xlinalg.core.shapes import ShapeError, output_shapes

    cores = [tuple(x.shape) for x in good]
    found = []

    def rejected(shapes, p):
        try:
            output_shapes(o, shapes, p)
        except ShapeError:
            return True
        return False

    for i, (arg, core) in enumerate(zip(o.args, cores)):
        variants = [core[:j] + (core[j] + d,) + core[j + 1:] for j in range(len(core)) for d in (1, -1) if core[j] + d >= 0]
        variants.append(core[::-1])
        bad = [v for v in variants if v != core and not (arg.square and v[0] != v[1]) and rejected(cores[:i] + [v] + cores[i + 1:], params)]
        for v in bad[:2]:
            arrays = tuple(np.ones(v) if j == i else x for j, x in enumerate(good))
            found.append((f"{arg.name} of shape {v}", arrays, params, v))
    for name, default in params.items():
        if isinstance(default, int) and not isinstance(default, bool):
            changed = {**params, name: 4}
            if rejected(cores, changed):
                found.append((f"{name}=4", tuple(good), changed, cores[0]))
    return found


def _failing(o, good, params, batch, index) -> tuple:
    """``good`` broadcast to ``batch`` with the entry at ``index`` broken by the registry's
    ``breaks``."""
    arrays = [np.broadcast_to(x, batch + x.shape).copy() for x in good]
    broken = o.breaks([x[index] for x in arrays], params)
    for x, b in zip(arrays, broken):
        x[index] = b
    return tuple(arrays)


def error_cases(op: str) -> list[ErrorCase]:
    """The documented bad inputs that apply to ``op``, all derived from its registry entry."""
    import xlinalg

    o = spec(op)
    good, params = _good_inputs(op)
    cases = []

    def replaced(i, x):
        arrays = list(good)
        arrays[i] = x
        return tuple(arrays)

    for i, arg in enumerate(o.args):
        if arg.ndim == 2:
            cases.append(ErrorCase(f"rank-1 {arg.name}", replaced(i, np.ones(4)), params, ValueError, (op, "(4,)")))
        else:
            cases.append(ErrorCase(f"rank-0 {arg.name}", replaced(i, np.array(1.0)), params, ValueError, (op, "()")))
        if arg.square:
            cases.append(ErrorCase(f"non-square {arg.name}", replaced(i, np.ones((4, 3))), params, ValueError, (op, "(4, 3)")))
    for dtype in ("int32", "int64", "bool", "float16"):
        cases.append(ErrorCase(f"{dtype} inputs", tuple(x.astype(dtype) for x in good), params, TypeError, (op, "float32", "float64", dtype)))
    if len(good) >= 2:
        mixed = (good[0].astype("float32"),) + tuple(good[1:])
        cases.append(ErrorCase("mixed float32/float64", mixed, params, TypeError, (op, "float32", "float64")))
        bad_batch = (np.broadcast_to(good[0], (2, *good[0].shape)).copy(), np.broadcast_to(good[1], (3, *good[1].shape)).copy()) + tuple(good[2:])
        cases.append(ErrorCase("batch (2,) vs (3,)", bad_batch, params, ValueError, (op, "(2, ", "(3, ")))
        cases.append(ErrorCase("arrays of two libraries", tuple(good), params, TypeError, (op,), foreign=1))
    cases.append(ErrorCase("unknown parameter", tuple(good), {**params, "bogus": 1}, TypeError, (op, "bogus")))
    for label, arrays, p, shape in _rejected_shapes(o, good, params):
        cases.append(ErrorCase(f"shape rule: {label}", arrays, p, ValueError, (op, str(tuple(shape)))))
    if o.failure is not None and o.breaks is not None:
        for batch, index in (((2, 3), (1, 2)), ((3,), (1,))):
            label = f"{o.failure} at {index}"
            cases.append(ErrorCase(label, _failing(o, good, params, batch, index), params, xlinalg.LinAlgError, (op,), index=index))
    return cases


def _run_error_case(ctx: Context, op: str, case: ErrorCase) -> tuple[str, str | None]:
    """("pass"|"fail"|"skip", message); floating-point warnings of failing inputs silenced."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return _error_case(ctx, op, case)


def _error_case(ctx: Context, op: str, case: ErrorCase) -> tuple[str, str | None]:
    b = ctx.backend
    try:
        xs = list(to_backend(b, case.arrays))
    except Exception as exc:  # the library cannot hold this input
        return "skip", f"{case.label}: backend cannot build the input ({type(exc).__name__})"
    if case.foreign is not None:
        other = b.foreign(case.arrays[case.foreign])
        if other is None:
            return "skip", f"{case.label}: backend cannot build another library's array"
        xs[case.foreign] = other
    contract = declarations.error_contract(b)
    linalg = case.index is not None
    if linalg and contract.failure_mode(op) == "nan":
        # no eager errors (e.g. under jit): the failing entry must come out NaN, the others finite
        try:
            outs = to_np(b, b.call(op, xs, case.params))
        except Exception as exc:
            return "fail", f"{case.label}: raised {type(exc).__name__}: {exc} (backend declares failures as NaN)"
        core = spec(op).outputs[0].ndim
        y = outs[0]
        bad = ~np.all(np.isfinite(y), axis=tuple(range(y.ndim - core, y.ndim))) if core else ~np.isfinite(y)
        expect = np.zeros(bad.shape, bool)
        expect[case.index] = True
        if np.array_equal(bad, expect):
            return "pass", None
        return "fail", f"{case.label}: non-finite entries {[tuple(i) for i in np.argwhere(bad)]}, expected only {case.index}"
    accepted = contract.accepted(case.expected)
    names = " or ".join(t.__name__ for t in accepted)
    exc = raised(b, op, xs, case.params)
    if exc is None:
        return "fail", f"{case.label}: no error raised, expected {names}"
    msg = str(exc)
    if late_message(exc):
        return "fail", f"{case.label}: {late_message(exc)}"
    if getattr(exc, "raised_at_synchronize", False) and contract.timing != "async":
        return "fail", f"{case.label}: {type(exc).__name__} raised only at synchronization, expected at the call"
    if not isinstance(exc, accepted):
        return "fail", f"{case.label}: raised {type(exc).__name__} ({msg[:120]}), expected {names}"
    missing = [f for f in case.fragments if f not in msg] if contract.messages else []
    if missing:
        return "fail", f"{case.label}: message {msg[:160]!r} does not name {', '.join(map(repr, missing))}"
    if linalg:
        o = spec(op)
        batch = case.arrays[0].shape[: case.arrays[0].ndim - o.args[0].ndim]
        index = contract.reported_index(exc, batch)
        if index is not None and tuple(index) != case.index:
            return "fail", f"{case.label}: the error reports batch index {index}, expected {case.index}"
    return "pass", None


def raised(b, op, xs, params) -> BaseException | None:
    """The exception of ``b.call(op, xs, params)``, raised at the call or, for an asynchronous
    backend, by its ``synchronize()`` or when the outputs are read (then marked
    ``raised_at_synchronize``); ``None`` when there was none."""
    plain = getattr(b, "wrapped", b)  # without the synchronization after each operation
    try:
        outs = plain.call(op, xs, params)
    except Exception as exc:
        return exc
    try:
        sync = getattr(plain, "synchronize", None)
        if sync is not None:
            sync()
        to_np(plain, outs)
    except Exception as exc:
        exc.raised_at_synchronize = True
        return exc
    return late_error(plain, op)


def late_error(b, op: str) -> BaseException | None:
    """The error a valid call of ``op`` raises right after a call that raised nothing, marked
    ``raised_late``: an error the earlier call deferred to the next operation (which a library
    that reports errors late would charge to the wrong call). The probe absorbs it, so the next
    case or check is not blamed. ``None`` when the probe runs cleanly."""
    good, params = _good_inputs(op)
    try:
        to_np(b, b.call(op, to_backend(b, good), params))
    except Exception as exc:
        exc.raised_late = True
        return exc
    return None


def late_message(exc) -> str | None:
    """The failure message for an error :func:`late_error` caught, else ``None``."""
    if not getattr(exc, "raised_late", False):
        return None
    return (f"no error raised by the call; {type(exc).__name__} ({' '.join(str(exc).split())[:120]}) surfaced only at "
            f"the next operation (errors must be raised by the call, at the latest when its outputs are evaluated)")


def check_errors(ctx: Context, op: str) -> tuple[Outcome, list[str]]:
    """The documented bad inputs raise the documented error naming the operator (and the
    shapes, and the batch index of a numerical failure). Returns the outcome and the list of
    skipped cases."""
    failures, skipped = [], []
    for case in error_cases(op):
        status, message = _run_error_case(ctx, op, case)
        if status == "fail":
            failures.append(message)
        elif status == "skip":
            skipped.append(message)
    return Outcome(math.inf if failures else 0.0, "; ".join(failures)), skipped


def applicable(op: str, check: str) -> bool:
    """Whether ``check`` can say anything about ``op`` at all (``structure`` needs a symmetric
    or triangular argument, ``degenerate`` eigenvalues)."""
    if check == "structure":
        return any(a.structure != "general" for a in spec(op).args)
    if check == "nan_policy":
        from .nan_policy import applies

        return applies(op)
    if check == "degenerate":
        return op == "syevd"
    return True


def _check_nan_policy(ctx: Context, op: str) -> tuple[Outcome, list[str]]:
    """:func:`xlinalg_conformance.nan_policy.check_nan_policy` (imported on use: that module
    builds on this one's helpers)."""
    from .nan_policy import check_nan_policy

    return check_nan_policy(ctx, op)


OPERATOR_CHECKS.update(errors=check_errors, degenerate=check_degenerate, nan_policy=_check_nan_policy)

SAMPLE_CHECKS = {
    "forward": check_forward,
    "fd_grad": check_fd_grad,
    "adjoint": check_adjoint,
    "structure": check_structure,
    "second_order": check_second_order,
    "batching": check_batching,
    "vmap": check_vmap,
    "dtype": check_dtype,
    "no_mutation": check_no_mutation,
    "accumulate": check_accumulate,
    "cross": check_cross,
}
