"""NumPy: xlinalg's forward and forward+backward (``xlinalg.vjp``) against NumPy/SciPy's own
forward, in the same process and run (``--threads`` threads, 1 by default).

    python benchmarks/bench_numpy.py [--ops potrf potrs] [--dtypes float64] [--sizes 8 32]
                                     [--threads 1] [--quick] [--json PATH]

NumPy has no backward pass, so the reference is its forward only (see NATIVE): the tables show
the forward ratio; ``fwd+bwd / native fwd`` in the JSON is the cost of value and gradient in
units of one native forward. No targets: a baseline.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import GP, environment, gp_nll, inputs, outputs, paired_medians, parse, print_results, run, write_json

ARGS = parse(__doc__)

import numpy as np  # noqa: E402
import scipy.linalg as sl  # noqa: E402

import xlinalg  # noqa: E402

NATIVE = {
    "potrf": "numpy.linalg.cholesky",
    "potri": "scipy.linalg.cho_solve(identity)",
    "potrs": "scipy.linalg.cho_solve",
    "trsm": "scipy.linalg.solve_triangular(lower=True)",
    "trmm": "numpy.tril(A) @ B",
    "syrk": "A @ A.mT",
    "gemm": "A @ B + C",
    "sumlogdiag": "numpy.log(numpy.diagonal(A)).sum(-1)",
    "syevd": "numpy.linalg.eigh",
    "inverse": "numpy.linalg.inv",
    "det": "numpy.linalg.det",
    "slogdet": "numpy.linalg.slogdet",
    "gelqf": "numpy.linalg.qr(A.mT), transposed",
    GP: "cholesky, solve_triangular, log(diagonal).sum",
}
_NATIVE = {
    "potrf": np.linalg.cholesky,
    "potri": lambda f: sl.cho_solve((f, True), np.broadcast_to(np.eye(f.shape[-1], dtype=f.dtype), f.shape), check_finite=False),
    "potrs": lambda f, b: sl.cho_solve((f, True), b, check_finite=False),
    # SciPy >= 1.15 batches solve_triangular (by a loop over the batch)
    "trsm": lambda a, b: sl.solve_triangular(a, b, lower=True, check_finite=False),
    "trmm": lambda a, b: np.tril(a) @ b,
    "syrk": lambda a: a @ a.mT,
    "gemm": lambda a, b, c: a @ b + c,
    "sumlogdiag": lambda a: np.log(np.diagonal(a, axis1=-2, axis2=-1)).sum(-1),
    "syevd": lambda a: np.linalg.eigh(a)[::-1],  # (vectors, values), in the order of xlinalg's outputs
    "inverse": np.linalg.inv,
    "det": np.linalg.det,
    "slogdet": np.linalg.slogdet,
    "gelqf": lambda a: tuple(x.mT for x in np.linalg.qr(a.mT)),
}
_NATIVE[GP] = gp_nll(_NATIVE["potrf"], _NATIVE["trsm"], _NATIVE["sumlogdiag"])


def gp_value_and_gradient(k, y):
    """The GP's value and gradient with respect to K through the three operators' pullbacks."""
    chol, pb_potrf = xlinalg.vjp(xlinalg.potrf, k)
    z, pb_trsm = xlinalg.vjp(xlinalg.trsm, chol, y)
    s, pb_sld = xlinalg.vjp(xlinalg.sumlogdiag, chol)
    g_chol, _ = pb_trsm(z)
    (g_sld,) = pb_sld(np.ones_like(s))
    return 0.5 * (z * z).sum(axis=(-2, -1)) + s, pb_potrf(g_chol + g_sld)


def fwd_bwd(op, x):
    if op == GP:
        return lambda: gp_value_and_gradient(*x)
    fn = getattr(xlinalg, op)

    def step():
        out, pullback = xlinalg.vjp(fn, *x)
        pullback(tuple(np.ones_like(y) for y in out) if isinstance(out, tuple) else np.ones_like(out))

    return step


def measure(op, dtype, n, batch, rng):
    x = inputs(op, n, batch, dtype, rng)
    ours = gp_nll(xlinalg.potrf, xlinalg.trsm, xlinalg.sumlogdiag) if op == GP else getattr(xlinalg, op)
    t_fwd, t_ref = paired_medians(lambda: outputs(op, ours(*x)), lambda: _NATIVE[op](*x), rounds=ARGS.rounds)
    t_all, _ = paired_medians(fwd_bwd(op, x), None, rounds=ARGS.rounds)
    return {"native_fwd": t_ref, "xlinalg_fwd": t_fwd, "xlinalg_fwd_bwd": t_all}


def main():
    rng = np.random.default_rng(0)
    records, missing = run(ARGS, "numpy", lambda *case: measure(*case, rng))
    print_results("numpy", ARGS.threads, records, missing)
    if ARGS.json:
        write_json(
            ARGS.json, framework="numpy", args=ARGS, records=records, missing=missing,
            native={op: NATIVE[op] for op in ARGS.ops},
            measures="native: NumPy/SciPy's forward (NumPy has no backward pass); xlinalg: its forward, and value "
            "and gradient with xlinalg.vjp and a pullback of ones (the GP: through the pullbacks of its three operators)",
            env=environment("numpy", packages=("numpy", "scipy")),
        )


if __name__ == "__main__":
    main()
