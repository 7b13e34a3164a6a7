"""MXNet: forward+backward of ``xlinalg.mxnet`` against MXNet's own ``mx.nd.linalg``, in the
same process and run (CPU).

    python benchmarks/bench_mxnet.py [--ops potrf trsm] [--dtypes float64] [--sizes 8 32] [--quick]
                                     [--forward] [--json PATH]

Each timed step records the operator under ``mx.autograd.record()``, runs ``backward`` with
random head gradients into ``grad_req="write"`` buffers and waits for the gradients. Native
and xlinalg are timed alternately ``--rounds`` times and the lowest median of each is kept.
Ratio = xlinalg / native (target ≤ 1.5). ``--forward`` (implied by ``--json``) adds a table of
the forward alone, outside autograd.
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mxnet as mx
from harness import cases, environment, median_time, parser, print_table, record, write_json

import xlinalg.mxnet as xl

TARGET = 1.5


def inputs(op, n, batch, dtype, rng):
    """NumPy inputs: SPD for potrf/syevd, well-conditioned lower-triangular A for trsm."""
    shape = (batch, n, n) if batch > 1 else (n, n)
    a = rng.standard_normal(shape)
    if op in ("potrf", "syevd"):
        return ((a @ np.swapaxes(a, -1, -2) / n + np.eye(n)).astype(dtype),)
    if op == "trsm":
        t = np.tril(a) + np.sqrt(n) * np.eye(n)
        return (t.astype(dtype), rng.standard_normal(shape).astype(dtype))
    return ((a + np.sqrt(n) * np.eye(n)).astype(dtype),)


def step_fn(fn, arrays, heads):
    def step():
        with mx.autograd.record():
            out = fn(*arrays)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        mx.autograd.backward(outs, heads)
        for x in arrays:
            x.grad.wait_to_read()

    return step


def forward_fn(fn, arrays):
    def step():
        out = fn(*arrays)
        for y in out if isinstance(out, (list, tuple)) else [out]:
            y.wait_to_read()

    return step


def _interleaved(ours, native, repeat, rounds):
    """Medians of both, measured alternately ``rounds`` times; the lowest of each (a shared
    machine's load comes and goes)."""
    t_ours, t_native = [], []
    for _ in range(rounds):
        t_native.append(median_time(native, repeat=repeat))
        t_ours.append(median_time(ours, repeat=repeat))
    return min(t_ours), min(t_native)


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--forward", action="store_true", help="also time the forward alone")
    p.add_argument("--rounds", type=int, default=2, help="alternate native/xlinalg this many times, keep the lowest median")
    args = p.parse_args()
    args.forward = args.forward or bool(args.json)
    repeat = 3 if args.quick else args.repeat
    rng = np.random.default_rng(0)
    rows, fwd_rows, records = [], [], []
    for op, dtype, n, batch in cases(args):
        arrays = [mx.nd.array(x, dtype=dtype) for x in inputs(op, n, batch, dtype, rng)]
        for x in arrays:
            x.attach_grad()
        outs = getattr(mx.nd.linalg, op)(*arrays)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        heads = [mx.nd.array(rng.standard_normal(y.shape), dtype=dtype) for y in outs]
        native, ours = getattr(mx.nd.linalg, op), getattr(xl, op)
        t_ours, t_native = _interleaved(step_fn(ours, arrays, heads), step_fn(native, arrays, heads), repeat, args.rounds)
        rows.append(dict(op=op, dtype=dtype, n=n, batch=batch, xlinalg=t_ours, reference=t_native))
        print(f"  {op} {dtype} n={n} batch={batch}: {t_ours * 1e3:.3f} ms vs {t_native * 1e3:.3f} ms", file=sys.stderr, flush=True)
        if args.forward:
            f_ours, f_native = _interleaved(forward_fn(ours, arrays), forward_fn(native, arrays), repeat, args.rounds)
            fwd_rows.append(dict(op=op, dtype=dtype, n=n, batch=batch, xlinalg=f_ours, reference=f_native))
            records.append(record(
                op, dtype, n, batch, native_fwd=f_native, xlinalg_fwd=f_ours, native_fwd_bwd=t_native, xlinalg_fwd_bwd=t_ours
            ))
    print(f"forward+backward, CPU, MXNet {mx.__version__}, {os.cpu_count()} cores")
    print_table(rows, reference="mx.nd.linalg", target=TARGET)
    if fwd_rows:
        print("\nforward only (not recording)")
        print_table(fwd_rows, reference="mx.nd.linalg")
    if args.json:
        write_json(
            args.json, framework="mxnet", args=args, records=records,
            native={op: f"mx.nd.linalg.{op}" for op in args.ops},
            measures="forward: the operator outside autograd, waiting for its outputs; forward+backward: the "
            "operator under mx.autograd.record(), backward with random head gradients into grad_req='write' "
            "buffers, waiting for the gradients",
            target={"ratio": "ratio_fwd_bwd", "max": TARGET, "min_n": 0},
            env=environment(packages=("mxnet", "numpy")),
        )


if __name__ == "__main__":
    main()
