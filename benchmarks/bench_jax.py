"""JAX: jitted forward+backward of xlinalg.jax against JAX's own functions, same process and run.

    python benchmarks/bench_jax.py [--ops potrf trsm syevd inverse] [--dtypes float64 float32]
                                   [--sizes 8 32 256 1024] [--quick] [--forward] [--json PATH]

For each case, ``jax.jit(jax.grad(loss))`` with ``loss = Σ W ∘ f(inputs)`` (random weights
``W``, gradients with respect to every input) for ``f`` = xlinalg.jax's operator and for its
native equivalent: ``jnp.linalg.cholesky``, ``jax.scipy.linalg.solve_triangular``,
``jnp.linalg.eigh``, ``jnp.linalg.inv``. The table shows medians and their ratio
(target ≤ 1.10). CPU only unless JAX sees another device. ``--forward`` (implied by ``--json``)
also times ``jax.jit(f)`` of both and prints its table.
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
from harness import cases, environment, median_time, parser, print_table, record, write_json  # noqa: E402

import xlinalg.jax as xj  # noqa: E402

TARGET = 1.10
NATIVE = {
    "potrf": "jnp.linalg.cholesky",
    "trsm": "jax.scipy.linalg.solve_triangular(lower=True)",
    "syevd": "jnp.linalg.eigh",
    "inverse": "jnp.linalg.inv",
}


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


def _alternating(g_ours, g_native, x, repeat):
    """(xlinalg seconds, native seconds) of two compiled functions."""
    jax.block_until_ready(g_ours(*x))  # compile outside the timing, one at a time
    jax.block_until_ready(g_native(*x))
    # alternate the two (native, ours, native, ours) and keep each one's best median, so that
    # neither is favoured by going first or by a burst of load from other processes
    ours_times, native_times = [], []
    for _ in range(2):
        native_times.append(median_time(lambda: jax.block_until_ready(g_native(*x)), repeat=repeat))
        ours_times.append(median_time(lambda: jax.block_until_ready(g_ours(*x)), repeat=repeat))
    return min(ours_times), min(native_times)


def run_case(op, dtype, n, batch, repeat, forward=False):
    """{"xlinalg": seconds, "reference": seconds} of jit(grad) for one case, with
    "xlinalg_fwd" and "reference_fwd" (jit of the function itself) if ``forward``."""
    rng = np.random.default_rng(0)
    x = inputs(op, n, batch, dtype, rng)
    ours, native = functions(op)
    weights = tuple(jnp.asarray(rng.standard_normal(y.shape), dtype=dtype) for y in native(*x))
    g_ours, g_native = gradient(ours, weights, len(x)), gradient(native, weights, len(x))
    t_ours, t_native = _alternating(g_ours, g_native, x, repeat)
    result = {"xlinalg": t_ours, "reference": t_native}
    if forward:
        f_ours, f_native = _alternating(jax.jit(ours), jax.jit(native), x, repeat)
        result.update(xlinalg_fwd=f_ours, reference_fwd=f_native)
    return result


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per case (run in a child process)")
    p.add_argument("--tries", type=int, default=2, help="attempts per case (a case that hangs is retried)")
    p.add_argument("--forward", action="store_true", help="also time the forward alone (implied by --json)")
    p.add_argument("--case", nargs=4, metavar=("OP", "DTYPE", "N", "BATCH"), help=argparse.SUPPRESS)
    args = p.parse_args()
    args.forward = args.forward or bool(args.json)
    repeat = 3 if args.quick else args.repeat
    if args.case:  # child: one case, result as JSON on the last line
        op, dtype, n, batch = args.case
        print(json.dumps(run_case(op, dtype, int(n), int(batch), repeat, forward=args.forward)))
        return
    rows, fwd_rows, records, missing, retried = [], [], [], [], []
    for op, dtype, n, batch in cases(args):
        # each case in its own process: an XLA hang or crash in one case cannot stop the table
        # (XLA's CPU runtime in jax 0.10 occasionally deadlocks executing batched triangular
        # solves, native and xlinalg's alike: a case that hangs is retried, by default once)
        cmd = [sys.executable, __file__, "--case", op, dtype, str(n), str(batch), "--repeat", str(repeat)]
        cmd += ["--forward"] if args.forward else []
        for attempt in range(max(1, args.tries)):
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
                result = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
                why = None if result else f"exit status {proc.returncode}: {proc.stderr.strip()[-200:]}"
            except subprocess.TimeoutExpired:
                result, why = None, f"no result within {args.timeout:.0f} s"
            if result is not None:
                break
            print(f"{op} {dtype} n={n} batch={batch}, attempt {attempt + 1}: {why}", file=sys.stderr, flush=True)
        if attempt:
            retried.append(f"{op} {dtype} n={n} batch={batch}: {attempt + 1} attempts")
        if result is None:
            missing.append(f"{op} {dtype} n={n} batch={batch}: {why}")
            print(f"{op} {dtype} n={n} batch={batch}: {why}", flush=True)
            continue
        rows.append(dict(op=op, dtype=dtype, n=n, batch=batch, xlinalg=result["xlinalg"], reference=result["reference"]))
        if args.forward:
            fwd_rows.append({**rows[-1], "xlinalg": result["xlinalg_fwd"], "reference": result["reference_fwd"]})
            records.append(record(
                op, dtype, n, batch, native_fwd=result["reference_fwd"], xlinalg_fwd=result["xlinalg_fwd"],
                native_fwd_bwd=result["reference"], xlinalg_fwd_bwd=result["xlinalg"],
            ))
        print(f"{op} {dtype} n={n} batch={batch}: xlinalg {result['xlinalg'] * 1e3:.3f} ms, "
              f"jax {result['reference'] * 1e3:.3f} ms, ratio {result['xlinalg'] / result['reference']:.2f}", flush=True)
    print()
    print(f"jax {jax.__version__}, device {jax.devices()[0].device_kind}; jit(grad(sum(W * f(x)))) w.r.t. every input")
    print_table(rows, reference="jax", target=TARGET)
    for m in missing:
        print("no result:", m)
    if fwd_rows:
        print("\nforward only: jit(f)")
        print_table(fwd_rows, reference="jax")
    if args.json:
        write_json(
            args.json, framework="jax", args=args, records=records, native={op: NATIVE[op] for op in args.ops},
            measures="forward: jax.jit(f); forward+backward: jax.jit(jax.grad(sum(W * f(x)))) with random "
            "weights W, with respect to every input; each case in its own process",
            target={"ratio": "ratio_fwd_bwd", "max": TARGET, "min_n": 0},
            env=environment(packages=("jax", "jaxlib", "numpy"), device=jax.devices()[0].device_kind),
            missing=missing, retried=retried,
        )


if __name__ == "__main__":
    main()
