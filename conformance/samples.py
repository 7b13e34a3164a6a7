"""Deterministic, well-conditioned inputs for every operator.

Each :class:`Sample` is one call: an operator, its parameters, its input arrays (NumPy,
generated in float64 from a seed and rounded to the sample's dtype), a label for the matrix
order ``n`` and the batch layout, and ``kappa``, a bound on the condition of the call that the
checks scale their tolerances with.

Coverage per operator: every parameter combination at n = 0, 1 and 5 unbatched, at n = 5 with
batch ``(3,)`` and, for operators with two or more array inputs, batches ``(2, 1)`` / ``(1, 3)``
broadcast against each other; n = 32 unbatched for two parameter combinations (the defaults and
all flags flipped), and an empty batch ``(0,)`` at n = 5. Structured arguments (symmetric,
triangular) carry random garbage in the triangle the operator must not read.
"""

from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

DTYPES = ("float32", "float64")
ORDERS = (0, 1, 5, 32)
SEED = 20240607

#: batch layouts: label -> batch shape of each array argument (cycled over arguments)
BATCHES = {
    "()": ((),),
    "(3,)": ((3,),),
    "(2,1)x(1,3)": ((2, 1), (1, 3), (3,)),
    "(0,)": ((0,),),
}


@dataclass(frozen=True)
class Sample:
    """One call of ``op`` on fixed inputs."""

    op: str
    params: dict = field(hash=False)
    inputs: tuple = field(hash=False, repr=False)  # NumPy arrays of dtype ``dtype``
    dtype: str
    n: int
    batch: str
    kappa: float
    seed: int

    @property
    def id(self) -> str:
        p = ",".join(f"{k}={_short(v)}" for k, v in self.params.items())
        return f"{self.op}[{p}]n={self.n},batch={self.batch},{self.dtype}"

    @property
    def batch_shape(self) -> tuple:
        """The broadcast batch shape of the call."""
        from xlinalg.core import operators

        spec = operators()[self.op]
        shapes = [x.shape[: x.ndim - a.ndim] for x, a in zip(self.inputs, spec.args)]
        return tuple(np.broadcast_shapes(*shapes)) if shapes else ()

    def rng(self, salt: str = "") -> np.random.Generator:
        """A generator for directions and cotangents, fixed by the sample and ``salt``."""
        return np.random.default_rng([self.seed, zlib.crc32(salt.encode())])

    def with_dtype(self, dtype: str) -> "Sample":
        return Sample(self.op, self.params, tuple(x.astype(dtype) for x in self.inputs), dtype,
                      self.n, self.batch, self.kappa, self.seed)


def _short(v):
    if isinstance(v, bool):
        return "T" if v else "F"
    return repr(v)


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


# ---- per-operator inputs ---------------------------------------------------------------------
def _op_shape(shape, transpose):
    return shape[::-1] if transpose else shape


def _gen_gemm(rng, b, n, p, with_c):
    m, k, q = n, n + 1, n + 2
    a = rng.standard_normal((*b[0], *_op_shape((m, k), p["transpose_a"])))
    bb = rng.standard_normal((*b[1], *_op_shape((k, q), p["transpose_b"])))
    arrays = [a, bb]
    if with_c:
        arrays.append(rng.standard_normal((*b[2], m, q)))
    # componentwise bound of the rounding error, relative to the result's size
    opa = np.swapaxes(a, -1, -2) if p["transpose_a"] else a
    opb = np.swapaxes(bb, -1, -2) if p["transpose_b"] else bb
    bound = abs(p["alpha"]) * (np.abs(opa) @ np.abs(opb))
    exact = p["alpha"] * (opa @ opb)
    if with_c:
        bound = bound + abs(p["beta"]) * np.abs(arrays[2])
        exact = exact + p["beta"] * arrays[2]
    return arrays, _ratio_bound(bound, exact)


def _ratio_bound(bound, exact):
    if bound.size == 0:
        return 1.0
    return max(1.0, float(np.max(bound)) / max(float(np.max(np.abs(exact))), 1e-300))


def gen_gemm2(rng, b, n, p):
    return _gen_gemm(rng, b, n, p, False)


def gen_gemm(rng, b, n, p):
    return _gen_gemm(rng, b, n, p, True)


def gen_syrk(rng, b, n, p):
    a = rng.standard_normal((*b[0], n, n + 1))
    return [a], 1.0


def _tri_and_rhs(rng, b, n, p, positive=False):
    a = triangular(rng, b[0], n, p["lower"], positive)
    shape = (3, n) if p.get("rightside") else (n, 3)
    rhs = rng.standard_normal((*b[1], *shape))
    return a, rhs


def gen_trmm(rng, b, n, p):
    a, rhs = _tri_and_rhs(rng, b, n, p)
    return [with_garbage(rng, a, p["lower"]), rhs], cond(a)


def gen_trsm(rng, b, n, p):
    a, rhs = _tri_and_rhs(rng, b, n, p)
    return [with_garbage(rng, a, p["lower"]), rhs], cond(a)


def gen_potrf(rng, b, n, p):
    a = symmetric_with_spectrum(rng, b[0], separated_spectrum(rng, b[0], n, 1.0, 3.0))
    return [with_garbage(rng, a, p["lower"])], cond(a)


def gen_potri(rng, b, n, p):
    f = triangular(rng, b[0], n, p["lower"], positive=True)
    return [with_garbage(rng, f, p["lower"])], cond(f) ** 2


def gen_potrs(rng, b, n, p):
    f, rhs = _tri_and_rhs(rng, b, n, p, positive=True)
    return [with_garbage(rng, f, p["lower"]), rhs], cond(f) ** 2


def gen_sumlogdiag(rng, b, n, p):
    a = rng.standard_normal((*b[0], n, n))
    idx = np.arange(n)
    a[..., idx, idx] = rng.uniform(1.5, 3.0, (*b[0], n))
    return [a], 3.0


def gen_syevd(rng, b, n, p):
    lam = separated_spectrum(rng, b[0], n, -2.0, 2.0)
    a = symmetric_with_spectrum(rng, b[0], lam)
    if n > 1:  # eigenvector sensitivity: ‖A‖ / smallest gap
        gaps = np.diff(np.sort(lam, axis=-1), axis=-1)
        kappa = float(np.max(np.max(np.abs(lam), axis=-1) / np.min(gaps, axis=-1))) if lam.size else 1.0
    else:
        kappa = 1.0
    return [with_garbage(rng, a, True)], kappa


def _gen_square(rng, b, n, p):
    a = well_conditioned(rng, b[0], n, n)
    return [a], cond(a)


gen_inverse = gen_det = gen_slogdet = _gen_square


def gen_gelqf(rng, b, n, p):
    a = well_conditioned(rng, b[0], n, n + 2)
    return [a], cond(a)


def gen_extractdiag(rng, b, n, p):
    return [rng.standard_normal((*b[0], n, n))], 1.0


gen_extracttrian = gen_extractdiag


def gen_makediag(rng, b, n, p):
    return [rng.standard_normal((*b[0], n))], 1.0


def gen_maketrian(rng, b, n, p):
    return [rng.standard_normal((*b[0], n * (n + 1) // 2))], 1.0


GENERATORS = {name[4:]: fn for name, fn in globals().items() if name.startswith("gen_")}


# ---- parameter combinations ------------------------------------------------------------------
def param_combos(op: str) -> list[dict]:
    """Every parameter combination the suite covers for ``op``."""
    tf = (False, True)
    if op == "gemm":
        return [dict(transpose_a=ta, transpose_b=tb, alpha=al, beta=be)
                for ta, tb, (al, be) in itertools.product(tf, tf, ((1.0, 1.0), (-0.7, 2.5)))]
    if op == "gemm2":
        return [dict(transpose_a=ta, transpose_b=tb, alpha=al) for ta, tb, al in itertools.product(tf, tf, (1.0, -0.7))]
    if op in ("trsm", "trmm"):
        return [dict(transpose=t, rightside=r, lower=lo, alpha=al)
                for t, r, lo, al in itertools.product(tf, tf, (True, False), (1.0, -1.5))]
    if op == "syrk":
        return [dict(transpose=t, alpha=al) for t, al in itertools.product(tf, (1.0, 0.6))]
    if op in ("potrf", "potri", "potrs"):
        return [dict(lower=True), dict(lower=False)]
    if op in ("extractdiag", "makediag"):
        return [dict(offset=k) for k in (0, 1, -1)]
    if op in ("extracttrian", "maketrian"):
        return [dict(offset=k, lower=lo) for k, lo in itertools.product((0, 1, -1), (True, False))]
    return [{}]


def _allowed(op, n, params) -> bool:
    if op in ("extractdiag", "extracttrian") and params.get("offset", 0) != 0:
        return n > abs(params["offset"])
    return True


def _configs(op, nargs, combos):
    """(combo index, n, batch label) triples."""
    last = len(combos) - 1
    for i in range(len(combos)):
        for n in (0, 1, 5):
            yield i, n, "()"
        yield i, 5, "(3,)"
        if nargs >= 2:
            yield i, 5, "(2,1)x(1,3)"
    for i in sorted({0, last}):
        yield i, 32, "()"
    yield 0, 5, "(0,)"


@lru_cache(maxsize=None)
def _base_samples(op: str) -> tuple:
    from xlinalg.core import operators

    spec = operators()[op]
    combos = param_combos(op)
    out = []
    for i, n, label in _configs(op, len(spec.args), combos):
        params = combos[i]
        if not _allowed(op, n, params):
            continue
        seed = zlib.crc32(f"{SEED}:{op}:{i}:{n}:{label}".encode())
        rng = np.random.default_rng(seed)
        layout = BATCHES[label]
        b = [layout[j % len(layout)] for j in range(3)]
        arrays, kappa = GENERATORS[op](rng, b, n, params)
        arrays = tuple(np.ascontiguousarray(x, dtype=np.float64) for x in arrays)
        out.append(Sample(op, dict(params), arrays, "float64", n, label, float(kappa), seed))
    return tuple(out)


def samples(op: str, dtypes=DTYPES) -> list[Sample]:
    """All samples of ``op`` in each of ``dtypes`` (float32 samples are the float64 ones
    rounded)."""
    base = _base_samples(op)
    return [s if d == "float64" else s.with_dtype(d) for d in dtypes for s in base]
