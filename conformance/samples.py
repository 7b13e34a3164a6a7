"""Deterministic, well-conditioned inputs for every operator.

Each :class:`Sample` is one call: an operator, its parameters, its input arrays (NumPy,
generated in float64 from a seed and rounded to the sample's dtype), a label for the matrix
order ``n`` and the batch layout, and ``kappa``, a bound on the condition of the call that the
checks scale their tolerances with.

Inputs are drawn from each argument's domain by :mod:`xlinalg.core.samples` and the parameter
combinations are the operator's registry ``grid``, so a new operator is covered without an
edit here. Coverage per operator: every parameter combination at n = 0, 1 and 5 unbatched, at n = 5 with
batch ``(3,)`` and, for operators with two or more array inputs, batches ``(2, 1)`` / ``(1, 3)``
broadcast against each other; n = 32 unbatched for two parameter combinations (the defaults and
the last grid combination), and an empty batch ``(0,)`` at n = 5. Structured arguments
(symmetric, triangular) carry random garbage in the triangle the operator must not read.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from functools import cache

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

    def with_dtype(self, dtype: str) -> Sample:
        return Sample(self.op, self.params, tuple(x.astype(dtype) for x in self.inputs), dtype,
                      self.n, self.batch, self.kappa, self.seed)


def _short(v):
    if isinstance(v, bool):
        return "T" if v else "F"
    return repr(v)


# ---- parameter combinations ------------------------------------------------------------------
def param_combos(op: str) -> list[dict]:
    """Every parameter combination the suite covers for ``op``: its registry ``grid``."""
    from xlinalg.core import operators

    return operators()[op].param_grid()


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


@cache
def _base_samples(op: str) -> tuple:
    from xlinalg.core import operators
    from xlinalg.core.samples import draw

    spec = operators()[op]
    combos = param_combos(op)
    out = []
    for i, n, label in _configs(op, len(spec.args), combos):
        params = combos[i]
        seed = zlib.crc32(f"{SEED}:{op}:{i}:{n}:{label}".encode())
        rng = np.random.default_rng(seed)
        layout = BATCHES[label]
        b = [layout[j % len(layout)] for j in range(3)]
        drawn = draw(spec, rng, b, n, params)
        if drawn is None:  # no input of this order (an offset beyond the matrix)
            continue
        arrays, kappa = drawn
        out.append(Sample(op, dict(params), arrays, "float64", n, label, float(kappa), seed))
    return tuple(out)


def samples(op: str, dtypes=DTYPES) -> list[Sample]:
    """All samples of ``op`` in each of ``dtypes`` (float32 samples are the float64 ones
    rounded)."""
    base = _base_samples(op)
    return [s if d == "float64" else s.with_dtype(d) for d in dtypes for s in base]
