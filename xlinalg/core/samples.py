"""Valid test inputs of any operator, drawn from its arguments' domains.

Every test, the conformance suite and the benchmarks take their inputs from here, so a new
operator is covered as soon as its arguments name their ``dims`` and ``domain``
(:class:`~xlinalg.core.operator.Arg`). Inputs are float64 NumPy arrays; structured arguments
(symmetric, triangular) carry unrelated values ("garbage") in the triangle the operator must
not read. Each draw also returns ``kappa``, a bound on the call's condition that tolerances
scale with.

Sizes of named dims for order ``n``: the first name met gets ``n``, each further name one more
(``gemm``: ``A`` is ``n × (n+1)``, ``B`` ``(n+1) × (n+2)``); the name ``t`` is a packed triangle's
length ``n (n + 1) / 2``.

Domains (float64, well conditioned by construction):

``general``            standard normal entries
``nonsingular``        singular values in [1, 2] (``full_rank``: the same for non-square)
``spd``                symmetric positive definite, eigenvalues spread over [1, 3]
``spectrum``           symmetric, eigenvalues spread over [−2, 2] with gaps ≥ 0.6 of the mean
``triangular``         triangular (the operator's ``lower``), |diagonal| in [1, 2], small off-diagonal
``factor``             the same with a positive diagonal (a Cholesky factor; κ counts twice)
``positive_diagonal``  standard normal with a diagonal in [1.5, 3]
"""

from __future__ import annotations

import numpy as np

from .shapes import ShapeError, output_shapes


# ---- matrix generators (float64; ``b`` is the batch shape) -----------------------------------
def orthogonal(rng, b, n):
    q, r = np.linalg.qr(rng.standard_normal((*b, n, n)))
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


def well_conditioned(rng, b, m, n, lo=1.0, hi=2.0):
    """``m × n`` with singular values in ``[lo, hi]`` (condition ≤ hi/lo)."""
    k = min(m, n)
    u = orthogonal(rng, b, m)[..., :, :k]
    v = orthogonal(rng, b, n)[..., :k, :]
    s = rng.uniform(lo, hi, (*b, k))
    return (u * s[..., None, :]) @ v


def symmetric_with_spectrum(rng, b, lam):
    """``Q diag(lam) Qᵀ`` for a random orthogonal ``Q``; ``lam`` has shape ``(*b, n)``."""
    q = orthogonal(rng, b, lam.shape[-1])
    return (q * lam[..., None, :]) @ np.swapaxes(q, -1, -2)


def separated_spectrum(rng, b, n, lo, hi):
    """``n`` ascending values from ``lo`` to ``hi``, jittered by under a quarter of the gap."""
    base = np.linspace(lo, hi, n) if n > 1 else np.full(n, (lo + hi) / 2)
    gap = (hi - lo) / max(n - 1, 1)
    return base + rng.uniform(-0.2 * gap, 0.2 * gap, (*b, n))


def triangular(rng, b, n, lower, positive=False):
    """Row-diagonally dominant triangular: ``|diag| ∈ [1, 2]``, off-diagonal row sums ≤ 1/2."""
    diag = rng.uniform(1.0, 2.0, (*b, n))
    if not positive:
        diag *= rng.choice([-1.0, 1.0], (*b, n))
    off = rng.uniform(-1.0, 1.0, (*b, n, n)) * 0.5 / max(n - 1, 1)
    off = np.tril(off, -1) if lower else np.triu(off, 1)
    return off + diag[..., None] * np.eye(n)


def with_garbage(rng, x, lower):
    """``x``'s ``lower``/upper triangle (diagonal included) with noise in the other one."""
    noise = 3.0 * rng.standard_normal(x.shape)
    keep = np.tril(np.ones(x.shape[-2:], bool)) if lower else np.triu(np.ones(x.shape[-2:], bool))
    return np.where(keep, x, noise)


def cond(x):
    """Largest 2-norm condition number over the batch (1 for empty matrices)."""
    if x.shape[-1] == 0 or x.size == 0:
        return 1.0
    s = np.linalg.svd(x.reshape(-1, *x.shape[-2:]), compute_uv=False)
    return float(np.max(s[:, 0] / s[:, -1]))


def spectrum_sensitivity(lam) -> float:
    """``max|λ| / smallest gap``: how much eigenvectors amplify perturbations."""
    if lam.shape[-1] < 2 or lam.size == 0:
        return 1.0
    gaps = np.diff(np.sort(lam, axis=-1), axis=-1)
    return float(np.max(np.max(np.abs(lam), axis=-1) / np.min(gaps, axis=-1)))


def _draw(rng, domain, b, shape, lower):
    """``(array, kappa)`` of ``shape`` with batch ``b`` from ``domain``."""
    if domain == "general" or len(shape) < 2:
        return rng.standard_normal((*b, *shape)), 1.0
    r, c = shape
    if domain in ("nonsingular", "full_rank"):
        a = well_conditioned(rng, b, r, c)
        return a, cond(a)
    if domain == "spd":
        a = symmetric_with_spectrum(rng, b, separated_spectrum(rng, b, r, 1.0, 3.0))
        return a, cond(a)
    if domain == "spectrum":
        lam = separated_spectrum(rng, b, r, -2.0, 2.0)
        return symmetric_with_spectrum(rng, b, lam), spectrum_sensitivity(lam)
    if domain in ("triangular", "factor"):
        t = triangular(rng, b, r, lower, positive=domain == "factor")
        k = cond(t)
        return t, k * k if domain == "factor" else k
    if domain == "positive_diagonal":
        a = rng.standard_normal((*b, r, c))
        idx = np.arange(r)
        a[..., idx, idx] = rng.uniform(1.5, 3.0, (*b, r))
        return a, 3.0
    raise ValueError(f"unknown domain {domain!r}")


# ---- inputs of an operator ---------------------------------------------------------------------
def dim_sizes(op, n: int, params) -> dict[str, int]:
    """Sizes of ``op``'s named dims at order ``n`` (see the module docstring)."""
    sizes: dict[str, int] = {}
    for arg in op.args:
        for name in arg.dims_for(params):
            if name not in sizes:
                sizes[name] = n * (n + 1) // 2 if name == "t" else n + len([s for s in sizes if s != "t"])
    return sizes


def core_shapes(op, n: int, params) -> tuple[tuple[int, ...], ...] | None:
    """The arguments' core shapes at order ``n``, or ``None`` when ``op`` rejects them (an
    ``offset`` beyond a small matrix)."""
    sizes = dim_sizes(op, n, params)
    shapes = tuple(tuple(sizes[d] for d in a.dims_for(params)) for a in op.args)
    try:
        output_shapes(op, shapes, params)
    except ShapeError:
        return None
    return shapes


def draw(op, rng, batches, n: int, params, *, garbage: bool = True) -> tuple[tuple, float] | None:
    """``(arrays, kappa)``: float64 inputs of ``op`` at order ``n``; ``batches[i]`` is the batch
    shape of argument ``i``. ``None`` when ``op`` has no valid input of that order.
    ``garbage=False`` leaves structured arguments clean (symmetric matrices symmetric,
    triangular ones zero outside their triangle)."""
    shapes = core_shapes(op, n, params)
    if shapes is None:
        return None
    lower = op.lower(params)
    arrays, kappa = [], 1.0
    for i, (arg, shape) in enumerate(zip(op.args, shapes)):
        x, k = _draw(rng, arg.domain, tuple(batches[i % len(batches)]), shape, lower)
        if garbage and arg.structure != "general":
            x = with_garbage(rng, x, lower)
        arrays.append(np.ascontiguousarray(x, dtype=np.float64))
        kappa = max(kappa, k)
    if op.condition is not None:
        kappa = max(kappa, float(op.condition(arrays, params)))
    return tuple(arrays), kappa


def case_id(op, params) -> str:
    """A test id: the operator's name and the values of the parameters its grid varies."""
    from .operator import get

    op = get(op)
    varied = [n for key in op.grid for n in (key if isinstance(key, tuple) else (key,))]
    return op.name + "".join(f"-{k}={params[k]}" for k in varied)


def example(op, rng, *, batch=(), n=4, params=None, dtype="float64", garbage=True) -> tuple[tuple, dict]:
    """``(arrays, params)``: valid inputs of ``op`` (a spec or a name) with ``batch`` axes on
    every argument, at order ``n``, with ``params`` (default: the first ``grid`` combination);
    ``garbage`` as for :func:`draw`."""
    from .operator import get

    op = get(op)
    params = dict(op.param_grid()[0] if params is None else {**op.params, **params})
    drawn = draw(op, rng, [batch], n, params, garbage=garbage)
    if drawn is None:
        raise ValueError(f"{op.name}: no valid input of order {n} with {params}")
    return tuple(x.astype(dtype) for x in drawn[0]), params


def reference(op, params, *arrays) -> tuple:
    """``op``'s outputs in float64 from its registry ``reference``, one batch entry at a time
    over the broadcast batch (the output shapes of an empty batch from the shape rule)."""
    from .operator import get

    op = get(op)
    arrays = [np.asarray(x, dtype=np.float64) for x in arrays]
    batch = np.broadcast_shapes(*[x.shape[: x.ndim - a.ndim] for x, a in zip(arrays, op.args)])
    arrays = [np.broadcast_to(x, batch + x.shape[x.ndim - a.ndim:]) for x, a in zip(arrays, op.args)]
    cores = output_shapes(op, [x.shape[len(batch):] for x in arrays], params)
    results = [np.empty(batch + s) for s in cores]
    for idx in np.ndindex(*batch):
        outs = op.reference(*(x[idx] for x in arrays), **params)
        for r, y in zip(results, outs):
            r[idx] = y
    return tuple(results)
