"""NumPy backend baseline: xlinalg forward and forward+backward (``xlinalg.vjp``) against
NumPy/SciPy's own forward, in the same process and run.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_numpy.py [--ops potrf trsm] [--sizes 8 32]
                                                            [--json PATH]

NumPy has no backward pass, so the reference is its forward only: ``fwd ratio`` is the
adapter-free overhead of xlinalg's forward, ``fwd+bwd / np fwd`` the cost of the gradient in
units of one NumPy forward. No target: this is the baseline later work is measured against.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from harness import cases, environment, median_time, parser, record, write_json

import xlinalg


def inputs(op, n, batch, dtype, rng):
    shape = (batch, n, n) if batch > 1 else (n, n)
    a = rng.standard_normal(shape)
    if op in ("potrf", "syevd"):
        a = a @ np.swapaxes(a, -1, -2) / n + np.eye(n)
        return (a.astype(dtype),)
    if op == "trsm":
        t = np.tril(a) + np.sqrt(n) * np.eye(n)
        return (t.astype(dtype), rng.standard_normal(shape).astype(dtype))
    return ((a + np.sqrt(n) * np.eye(n)).astype(dtype),)


def native(op):
    """NumPy/SciPy's own forward of ``op``."""
    if op == "potrf":
        return np.linalg.cholesky
    if op == "syevd":
        return np.linalg.eigh
    if op == "inverse":
        return np.linalg.inv
    # trsm: SciPy's batched BLAS trsm (SciPy >= 1.15 batches; older ones loop here)
    def trsm(a, b):
        if a.ndim == 2 or int(scipy.__version__.split(".")[1]) >= 15:
            return scipy.linalg.solve_triangular(a, b, lower=True, check_finite=False)
        return np.stack([scipy.linalg.solve_triangular(x, y, lower=True, check_finite=False) for x, y in zip(a, b)])

    return trsm


NATIVE = {
    "potrf": "numpy.linalg.cholesky",
    "trsm": "scipy.linalg.solve_triangular(lower=True)",
    "syevd": "numpy.linalg.eigh",
    "inverse": "numpy.linalg.inv",
}


def main():
    args = parser(__doc__.splitlines()[0]).parse_args()
    repeat = 3 if args.quick else args.repeat
    rng = np.random.default_rng(0)
    head = f"{'op':<9}{'dtype':<9}{'n':>6}{'batch':>7}{'np fwd ms':>12}{'xl fwd ms':>12}{'xl fwd+bwd ms':>15}{'fwd ratio':>11}{'fwd+bwd / np fwd':>18}"
    print(head)
    print("-" * len(head))
    records = []
    for op, dtype, n, batch in cases(args):
        x = inputs(op, n, batch, dtype, rng)
        fn, ref = getattr(xlinalg, op), native(op)

        def fwd_bwd():
            out, pullback = xlinalg.vjp(fn, *x)
            pullback(tuple(np.ones_like(y) for y in out) if isinstance(out, tuple) else np.ones_like(out))

        t_ref = median_time(lambda: ref(*x), repeat=repeat)
        t_fwd = median_time(lambda: fn(*x), repeat=repeat)
        t_all = median_time(fwd_bwd, repeat=repeat)
        print(f"{op:<9}{dtype:<9}{n:>6}{batch:>7}{t_ref * 1e3:>12.3f}{t_fwd * 1e3:>12.3f}{t_all * 1e3:>15.3f}{t_fwd / t_ref:>11.2f}{t_all / t_ref:>18.2f}", flush=True)
        records.append(record(op, dtype, n, batch, native_fwd=t_ref, xlinalg_fwd=t_fwd, xlinalg_fwd_bwd=t_all))
    if args.json:
        write_json(
            args.json, framework="numpy", args=args, records=records, native={op: NATIVE[op] for op in args.ops},
            measures="native: NumPy/SciPy's forward (NumPy has no backward pass); xlinalg: its forward, and "
            "value and gradient with xlinalg.vjp and a pullback of ones",
            env=environment(packages=("numpy", "scipy")),
        )


if __name__ == "__main__":
    main()
