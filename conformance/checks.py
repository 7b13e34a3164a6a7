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

from . import reference as ref
from .samples import Sample, param_combos

#: Tolerance constants (see docs/conformance.md):
#: forward/adjoint/batching: ``C · ε · max(n, 1) · κ``;  fd_grad: ``C · κ²`` (float64, 4-point
#: central differences with a relative step ‖h v‖ = 1e-3 ‖x‖);  structure: ``C · ε · max(n, 1)``;
#: cross: ``C · κ`` in float64;  second_order: ``C · κ³`` (float64, finite differences of the VJP).
TOLERANCES = {
    "forward": 10.0,
    "adjoint": 10.0,
    "batching": 10.0,
    "fd_grad": 1e-9,
    "structure": 4.0,
    "cross": 1e-12,
    "second_order": 1e-9,
}
FD_STEP = 1e-3

CHECKS = ("forward", "fd_grad", "adjoint", "structure", "second_order", "degenerate", "batching", "vmap", "dtype",
          "no_mutation", "errors", "nan_policy", "cross")
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


def run_vjp(backend, op, arrays, params, cotangents) -> tuple:
    g = backend.vjp(op, to_backend(backend, arrays), params, to_backend(backend, cotangents))
    return to_np(backend, g)


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


def rel_err(y, r, core: int) -> tuple[float, tuple]:
    """Worst per-batch-entry error ``max|y − r| / max(max|r|, 1e-2 · max|r| over the batch)``
    and the batch index where it occurs. Non-finite values where ``r`` is finite count as
    infinite error."""
    y, r = np.asarray(y, np.float64), np.asarray(r, np.float64)
    if y.shape != r.shape:
        raise AssertionError(f"shape {y.shape}, expected {r.shape}")
    if r.size == 0:
        return 0.0, ()
    d = np.abs(y - r)
    d = np.where(np.isnan(d) & ~np.isnan(r), np.inf, d)
    d = np.where(np.isnan(d), 0.0, d)  # both NaN: equal
    axes = tuple(range(r.ndim - core, r.ndim))
    a = np.where(np.isfinite(r), np.abs(r), 0.0)
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
def _fd(backend, s: Sample, i: int, v: np.ndarray, h: float) -> tuple:
    """4-point central difference of every output along ``v`` in argument ``i``."""

    def f(t):
        arrays = list(s.inputs)
        arrays[i] = s.inputs[i] + t * v
        return run_call(backend, s.op, arrays, s.params)

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
        v = direction(rng, x, arg, lower)
        h = FD_STEP * read_norm(x, arg, lower) / norm(v)
        fd = _fd(ctx.backend, s, i, v, h)
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


def read_norm(x, arg, lower) -> float:
    """``max(‖x‖, 1)``, the Frobenius norm over the part of ``x`` that is read: the scale of
    finite-difference steps (``‖h v‖ = FD_STEP · read_norm``)."""
    read = x if arg.structure == "general" else (np.tril(x) if lower else np.triu(x))
    return max(norm(read), 1.0)


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
    triangle; tangents in the unread triangle of a triangular argument change nothing."""
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
    if ctx.has("vjp"):
        g = run_vjp(ctx.backend, s.op, s.inputs, s.params, cotangents_for(rng, outs, s.dtype))
        check_shapes("VJP of argument", g, s.inputs)
        for i in structured:
            gi, arg = g[i], op.args[i]
            scale = float(np.max(np.abs(gi), initial=0.0)) or 1.0
            if arg.structure == "symmetric":
                e = float(np.max(np.abs(gi - np.swapaxes(gi, -1, -2)), initial=0.0)) / scale
                items.append((e / tol, f"gradient of symmetric {arg.name} is not symmetric: max|G − Gᵀ|/max|G| = {e:.2e} (tol {tol:.1e})"))
            else:
                outside = gi - (np.tril(gi) if lower else np.triu(gi))
                e = float(np.max(np.abs(outside), initial=0.0)) / scale
                side = "upper" if lower else "lower"
                items.append((e / tol, f"gradient of triangular {arg.name} is not masked: max over the {side} triangle {e:.2e} (tol {tol:.1e})"))
    if ctx.has("jvp"):
        for i in structured:
            arg = op.args[i]
            if arg.structure != "triangular" or s.inputs[i].shape[-1] < 2:
                continue
            v = rng.standard_normal(s.inputs[i].shape)
            v = (np.triu(v, 1) if lower else np.tril(v, -1)).astype(s.dtype)
            tangents = [np.zeros_like(y) for y in s.inputs]
            tangents[i] = v
            t = run_jvp(ctx.backend, s.op, s.inputs, tangents, s.params)
            e = max(float(np.max(np.abs(ti), initial=0.0)) for ti in t)
            items.append((math.inf if e > 0 else 0.0, f"a tangent in the unread triangle of {arg.name} changes the JVP (max {e:.2e})"))
    if not items:
        raise NotApplicable("nothing to check")
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
            e, idx = rel_err(gb, expect, a.ndim)
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
        v = direction(rng, x, arg, lower)
        scale = read_norm(x, arg, lower)
        h = FD_STEP * scale / norm(v)

        def phi(t):
            arrays = list(s.inputs)
            arrays[i] = s.inputs[i] + t * v
            return sum(inner(gj, wj) for gj, wj in zip(run_vjp(b, s.op, arrays, s.params, u), w))

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
def degenerate_inputs() -> list[tuple[str, np.ndarray]]:
    """Symmetric matrices with a repeated eigenvalue and an isolated largest one:
    diag(1, 1, 2), a rotation of it, and a batch mixing diag(3, 3, 3, 7), a rotated
    diag(−1, 2, 2, 5) and a non-degenerate matrix. (A fully degenerate ``c I`` is covered by
    the eigenvalue loss only: it has no isolated eigenvector.)"""
    from xlinalg.core.samples import orthogonal

    rng = np.random.default_rng(5)

    q3, q4 = orthogonal(rng, (), 3), orthogonal(rng, (), 4)
    rot = q3 @ np.diag([1.0, 1.0, 2.0]) @ q3.T
    batch = np.stack([np.diag([3.0, 3.0, 3.0, 7.0]), q4 @ np.diag([-1.0, 2.0, 2.0, 5.0]) @ q4.T,
                      q4 @ np.diag([-1.0, 0.5, 2.0, 5.0]) @ q4.T])
    return [("diag(1, 1, 2)", np.diag([1.0, 1.0, 2.0])), ("rotated diag(1, 1, 2)", rot), ("batch of 3", batch),
            ("3 I", 3.0 * np.eye(3))]


def check_degenerate(ctx: Context, op: str) -> tuple[Outcome, list[str]]:
    """syevd at repeated eigenvalues: gradients finite (float32 and float64) and exact for
    losses that depend on the eigenvalues (``Σ exp λ``) and on an isolated eigenvector's
    projector (``⟨W, u u ᵀ⟩`` for the largest eigenvalue), against finite differences."""
    if op != "syevd":
        raise NotApplicable("only syevd has eigenvalues")
    if not (ctx.has("vjp") or ctx.has("jvp")):
        raise Skip(f"backend {ctx.backend.name} lacks vjp and jvp")
    b = ctx.backend
    items = []
    for label, a in degenerate_inputs():
        n = a.shape[-1]
        rng = np.random.default_rng(n)
        w = rng.standard_normal(a.shape)
        v = rng.standard_normal(a.shape)
        v = (v + np.swapaxes(v, -1, -2)) / 2
        v /= norm(v)

        def losses(x):
            u, lam = run_call(b, "syevd", (x,), {})
            top = u[..., -1, :]
            return np.sum(np.exp(lam)), float(np.sum(w * (top[..., :, None] * top[..., None, :])))

        h = FD_STEP * norm(a)
        fds = [(8 * (p1 - m1) - (p2 - m2)) / (12 * h) for p1, m1, p2, m2 in
               zip(losses(a + h * v), losses(a - h * v), losses(a + 2 * h * v), losses(a - 2 * h * v))]
        u, lam = run_call(b, "syevd", (a,), {})
        top = u[..., -1, :]
        g_top = np.zeros_like(u)
        g_top[..., -1, :] = np.einsum("...ij,...j->...i", w + np.swapaxes(w, -1, -2), top)
        cot = [(np.zeros_like(u), np.exp(lam)), (g_top, np.zeros_like(lam))]
        names = ("Σ exp(λ)", "⟨W, u uᵀ⟩ of the top eigenvector")
        if label == "3 I":
            cot, fds, names = cot[:1], fds[:1], names[:1]
        if label == "3 I":
            kappa = 1.0  # eigenvalue loss only: a symmetric function of λ, smooth everywhere
        else:  # max|λ| over the gap below the largest eigenvalue
            lam_ref = np.linalg.eigvalsh(a)
            kappa = float(np.max(np.max(np.abs(lam_ref), axis=-1) / (lam_ref[..., -1] - lam_ref[..., -2])))
        for dtype in ("float32", "float64"):
            # float64: the finite-difference tolerance; float32: its rounding, 10 ε n κ
            tol = TOLERANCES["fd_grad"] * kappa**2 if dtype == "float64" else TOLERANCES["adjoint"] * eps(dtype) * n * kappa
            x = a.astype(dtype)
            for name, (gu, gl), fd in zip(names, cot, fds):
                scale = abs(fd) + 1e-300
                if ctx.has("vjp"):
                    g = run_vjp(b, "syevd", (x,), {}, (gu.astype(dtype), gl.astype(dtype)))[0]
                    if not np.all(np.isfinite(g)):
                        items.append((math.inf, f"{label}, {dtype}: VJP of {name} is not finite"))
                        continue
                    e = abs(inner(g, v) - fd) / max(scale, norm(g) * 1e-3)
                    items.append((e / tol, f"{label}, {dtype}: VJP of {name} is off by {e:.2e} relative to finite differences (tol {tol:.1e})"))
                if ctx.has("jvp"):
                    du, dl = run_jvp(b, "syevd", (x,), (v.astype(dtype),), {})
                    if not (np.all(np.isfinite(du)) and np.all(np.isfinite(dl))):
                        items.append((math.inf, f"{label}, {dtype}: JVP is not finite"))
                        continue
                    if name.startswith("Σ"):
                        d = float(np.sum(np.exp(lam) * dl))
                    else:
                        dtop = du[..., -1, :]
                        d = float(np.sum(w * (dtop[..., :, None] * top[..., None, :] + top[..., :, None] * dtop[..., None, :])))
                    e = abs(d - fd) / scale
                    items.append((e / tol, f"{label}, {dtype}: JVP of {name} is off by {e:.2e} relative to finite differences (tol {tol:.1e})"))
    return Outcome(*_worst(items)), []


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
    linalg = case.index is not None
    if linalg and not ctx.has("errors"):
        # no eager errors (e.g. under jit): the failing entry must come out NaN, the others finite
        try:
            outs = to_np(b, b.call(op, xs, case.params))
        except Exception as exc:
            return "fail", f"{case.label}: raised {type(exc).__name__}: {exc} (backend declares no eager errors)"
        core = spec(op).outputs[0].ndim
        y = outs[0]
        bad = ~np.all(np.isfinite(y), axis=tuple(range(y.ndim - core, y.ndim))) if core else ~np.isfinite(y)
        expect = np.zeros(bad.shape, bool)
        expect[case.index] = True
        if np.array_equal(bad, expect):
            return "pass", None
        return "fail", f"{case.label}: non-finite entries {[tuple(i) for i in np.argwhere(bad)]}, expected only {case.index}"
    try:
        b.call(op, xs, case.params)
    except Exception as exc:
        msg = str(exc)
        if not isinstance(exc, case.expected):
            return "fail", f"{case.label}: raised {type(exc).__name__} ({msg[:120]}), expected {case.expected.__name__}"
        missing = [f for f in case.fragments if f not in msg]
        if missing:
            return "fail", f"{case.label}: message {msg[:160]!r} does not name {', '.join(map(repr, missing))}"
        if linalg and tuple(getattr(exc, "index", ())) != case.index:
            return "fail", f"{case.label}: LinAlgError.index is {getattr(exc, 'index', None)}, expected {case.index}"
        return "pass", None
    return "fail", f"{case.label}: no error raised, expected {case.expected.__name__}"


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
    "cross": check_cross,
}
