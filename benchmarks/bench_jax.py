"""JAX: jitted forward+backward of xlinalg.jax against JAX's own functions, same process and run.

    python benchmarks/bench_jax.py [--ops potrf trsm syevd inverse] [--dtypes float64 float32]
                                   [--sizes 8 32 256 1024] [--quick]

For each case, ``jax.jit(jax.grad(loss))`` with ``loss = Σ W ∘ f(inputs)`` (random weights
``W``, gradients with respect to every input) for ``f`` = xlinalg.jax's operator and for its
native equivalent: ``jnp.linalg.cholesky``, ``jax.scipy.linalg.solve_triangular``,
``jnp.linalg.eigh``, ``jnp.linalg.inv``. The table shows medians and their ratio
(target ≤ 1.10). CPU only unless JAX sees another device.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import jax.scipy.linalg as jsl  # noqa: E402
from harness import cases, median_time, parser, print_table  # noqa: E402

import xlinalg.jax as xj  # noqa: E402

TARGET = 1.10


def inputs(op, n, batch, dtype, rng):
    shape = (batch, n, n) if batch > 1 else (n, n)
    a = rng.standard_normal(shape)
    if op in ("potrf", "syevd"):
        a = a @ np.swapaxes(a, -1, -2) / n + np.eye(n)
        return (jnp.asarray(a, dtype=dtype),)
    if op == "trsm":
        t = np.tril(a) + np.sqrt(n) * np.eye(n)
        return jnp.asarray(t, dtype=dtype), jnp.asarray(rng.standard_normal(shape), dtype=dtype)
    return (jnp.asarray(a + np.sqrt(n) * np.eye(n), dtype=dtype),)


def functions(op):
    """(xlinalg, native) functions returning a tuple of outputs with matching layouts."""
    if op == "potrf":
        return (lambda a: (xj.potrf(a),)), (lambda a: (jnp.linalg.cholesky(a),))
    if op == "trsm":
        return (lambda a, b: (xj.trsm(a, b),)), (lambda a, b: (jsl.solve_triangular(a, b, lower=True),))
    if op == "syevd":
        # eigenvectors as columns in both, so that the same weights apply
        def ours(a):
            u, lam = xj.syevd(a)
            return u.mT, lam

        return ours, (lambda a: tuple(jnp.linalg.eigh(a))[::-1])
    if op == "inverse":
        return (lambda a: (xj.inverse(a),)), (lambda a: (jnp.linalg.inv(a),))
    raise KeyError(op)


def gradient(f, weights, nargs):
    def loss(*xs):
        return sum(jnp.sum(w * y) for w, y in zip(weights, f(*xs)))

    return jax.jit(jax.grad(loss, argnums=tuple(range(nargs))))


def run_case(op, dtype, n, batch, repeat):
    """(xlinalg seconds, native seconds) for one case."""
    rng = np.random.default_rng(0)
    x = inputs(op, n, batch, dtype, rng)
    ours, native = functions(op)
    weights = tuple(jnp.asarray(rng.standard_normal(y.shape), dtype=dtype) for y in native(*x))
    g_ours, g_native = gradient(ours, weights, len(x)), gradient(native, weights, len(x))
    jax.block_until_ready(g_ours(*x))  # compile outside the timing, one at a time
    jax.block_until_ready(g_native(*x))
    # alternate the two (native, ours, native, ours) and keep each one's best median, so that
    # neither is favoured by going first or by a burst of load from other processes
    ours_times, native_times = [], []
    for _ in range(2):
        native_times.append(median_time(lambda: jax.block_until_ready(g_native(*x)), repeat=repeat))
        ours_times.append(median_time(lambda: jax.block_until_ready(g_ours(*x)), repeat=repeat))
    return min(ours_times), min(native_times)


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per case (run in a child process)")
    p.add_argument("--case", nargs=4, metavar=("OP", "DTYPE", "N", "BATCH"), help=argparse.SUPPRESS)
    args = p.parse_args()
    repeat = 3 if args.quick else args.repeat
    if args.case:  # child: one case, result as JSON on the last line
        op, dtype, n, batch = args.case
        t_ours, t_native = run_case(op, dtype, int(n), int(batch), repeat)
        print(json.dumps({"xlinalg": t_ours, "reference": t_native}))
        return
    rows, missing = [], []
    for op, dtype, n, batch in cases(args):
        # each case in its own process: an XLA hang or crash in one case cannot stop the table
        # (XLA's CPU runtime in jax 0.10 occasionally deadlocks executing batched triangular
        # solves, native and xlinalg's alike: a case that hangs is retried once)
        cmd = [sys.executable, __file__, "--case", op, dtype, str(n), str(batch), "--repeat", str(repeat)]
        for _ in range(2):
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
                result = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
                why = None if result else f"exit status {proc.returncode}: {proc.stderr.strip()[-200:]}"
            except subprocess.TimeoutExpired:
                result, why = None, f"no result within {args.timeout:.0f} s"
            if result is not None:
                break
        if result is None:
            missing.append(f"{op} {dtype} n={n} batch={batch}: {why}")
            print(f"{op} {dtype} n={n} batch={batch}: {why}", flush=True)
            continue
        rows.append(dict(op=op, dtype=dtype, n=n, batch=batch, **result))
        print(f"{op} {dtype} n={n} batch={batch}: xlinalg {result['xlinalg'] * 1e3:.3f} ms, "
              f"jax {result['reference'] * 1e3:.3f} ms, ratio {result['xlinalg'] / result['reference']:.2f}", flush=True)
    print()
    print(f"jax {jax.__version__}, device {jax.devices()[0].device_kind}; jit(grad(sum(W * f(x)))) w.r.t. every input")
    print_table(rows, reference="jax", target=TARGET)
    for m in missing:
        print("no result:", m)


if __name__ == "__main__":
    main()
