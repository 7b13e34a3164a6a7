"""PyTorch: forward+backward time of ``xlinalg.torch`` against the native ``torch.linalg``
equivalent, in the same process and run (CPU, ``torch.set_num_threads(2)`` by default).

    python benchmarks/bench_torch.py [--ops potrf trsm] [--dtypes float64] [--sizes 8 32]
                                     [--device cuda] [--threads 2] [--clock cpu] [--quick]
                                     [--forward] [--json PATH]

Each case times ``forward + torch.autograd.grad`` of a random-weighted sum of the outputs
(median of repeated rounds, alternating between the two): potrf vs ``torch.linalg.cholesky``, trsm vs
``torch.linalg.solve_triangular``, syevd vs ``torch.linalg.eigh``, inverse vs
``torch.linalg.inv``. Then the per-call overhead at n = 4 (one matrix): forward+backward and
forward only, in µs, for both. Target: ratio ≤ 1.15 for n ≥ 32. ``--forward`` (implied by
``--json``) also times the forward alone (under ``torch.no_grad``) and prints its table.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import cases, environment, median_time, parser, print_table, record, write_json

import xlinalg.torch as xt

TARGET = 1.15
NATIVE = {
    "potrf": "torch.linalg.cholesky",
    "trsm": "torch.linalg.solve_triangular(upper=False)",
    "syevd": "torch.linalg.eigh",
    "inverse": "torch.linalg.inv",
}


def inputs(op, n, batch, dtype, device, rng):
    shape = (batch, n, n) if batch > 1 else (n, n)
    a = rng.standard_normal(shape)
    if op in ("potrf", "syevd"):
        arrays = (a @ np.swapaxes(a, -1, -2) / n + np.eye(n),)
    elif op == "trsm":
        arrays = (np.tril(a) + np.sqrt(n) * np.eye(n), rng.standard_normal(shape))
    else:
        arrays = (a + np.sqrt(n) * np.eye(n),)
    return tuple(torch.tensor(x, dtype=getattr(torch, dtype), device=device, requires_grad=True) for x in arrays)


def functions(op):
    """``(xlinalg, native)``: each maps the inputs to a tuple of outputs."""
    if op == "potrf":
        return (lambda a: (xt.potrf(a),)), (lambda a: (torch.linalg.cholesky(a),))
    if op == "trsm":
        return (lambda a, b: (xt.trsm(a, b),)), (lambda a, b: (torch.linalg.solve_triangular(a, b, upper=False),))
    if op == "syevd":
        return (lambda a: xt.syevd(a)), (lambda a: tuple(torch.linalg.eigh(a))[::-1])
    if op == "inverse":
        return (lambda a: (xt.inverse(a),)), (lambda a: (torch.linalg.inv(a),))
    raise ValueError(f"no benchmark for {op}")


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter


def paired_medians(f, g, *, repeat: int, min_time: float = 0.05) -> tuple[float, float]:
    """Medians of the per-call times of ``f`` and ``g`` over ``repeat`` rounds that alternate
    between the two (so load from other processes affects both alike); each round lasts
    about ``min_time``. The warm-up is :func:`harness.median_time` with one round each."""
    once = [median_time(h, repeat=1, min_time=min_time / 4) for h in (f, g)]
    number = [max(1, int(min_time / max(t, 1e-7))) for t in once]
    rounds = ([], [])
    for _ in range(repeat):
        for k, h in enumerate((f, g)):
            t0 = clock()
            for _ in range(number[k]):
                h()
            rounds[k].append((clock() - t0) / number[k])
    return statistics.median(rounds[0]), statistics.median(rounds[1])


def timers(fn, xs, rng):
    """``(forward, forward+backward)`` closures for ``fn`` at ``xs``."""
    outs = fn(*xs)
    weights = [torch.tensor(rng.standard_normal(tuple(y.shape)), dtype=y.dtype, device=y.device) for y in outs]
    sync = torch.cuda.synchronize if xs[0].is_cuda else (lambda: None)

    def forward():
        with torch.no_grad():
            fn(*xs)
        sync()

    def forward_backward():
        outs = fn(*xs)
        loss = sum((y * w).sum() for y, w in zip(outs, weights))
        torch.autograd.grad(loss, xs)
        sync()

    return forward, forward_backward


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--clock", choices=tuple(CLOCKS), default="wall",
        help="wall: elapsed time; cpu: CPU time of this process (steadier on a shared machine)",
    )
    p.add_argument("--no-overhead", action="store_true", help="skip the n = 4 overhead table")
    p.add_argument("--forward", action="store_true", help="also time the forward alone (implied by --json)")
    args = p.parse_args()
    args.forward = args.forward or bool(args.json)
    global clock
    clock = CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    repeat = 3 if args.quick else args.repeat
    rng = np.random.default_rng(0)
    print(
        f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} threads, "
        f"{args.clock} clock; forward+backward"
    )
    rows, fwd_rows, records, overhead = [], [], [], []
    for op, dtype, n, batch in cases(args):
        xs = inputs(op, n, batch, dtype, args.device, rng)
        ours, native = functions(op)
        (f_xl, fb_xl), (f_nt, fb_nt) = timers(ours, xs, rng), timers(native, xs, rng)
        t_xl, t_ref = paired_medians(fb_xl, fb_nt, repeat=repeat)
        rows.append({"op": op, "dtype": dtype, "n": n, "batch": batch, "xlinalg": t_xl, "reference": t_ref})
        print_table(rows[-1:], reference="torch") if len(rows) == 1 else _row(rows[-1])
        if args.forward:
            tf_xl, tf_ref = paired_medians(f_xl, f_nt, repeat=repeat)
            fwd_rows.append({**rows[-1], "xlinalg": tf_xl, "reference": tf_ref})
            records.append(record(
                op, dtype, n, batch, native_fwd=tf_ref, xlinalg_fwd=tf_xl, native_fwd_bwd=t_ref, xlinalg_fwd_bwd=t_xl
            ))
    print()
    print_table(rows, reference="torch", target=TARGET)
    if fwd_rows:
        print("\nforward only (torch.no_grad)")
        print_table(fwd_rows, reference="torch")
    if not args.no_overhead:
        overhead = _overhead(args, repeat, rng)
    if args.json:
        write_json(
            args.json, framework="torch", args=args, records=records, native={op: NATIVE[op] for op in args.ops},
            measures="forward: the operator under torch.no_grad; forward+backward: the operator, a "
            "random-weighted sum of its outputs and torch.autograd.grad with respect to every input",
            target={"ratio": "ratio_fwd_bwd", "max": TARGET, "min_n": 32},
            env=environment(packages=("torch", "numpy"), threads=torch.get_num_threads(), clock=args.clock,
                            device=args.device),
            overhead_n4_us=overhead,
        )


def _overhead(args, repeat, rng):
    """The per-call overhead table at n = 4; its rows (µs)."""
    rows = []
    print()
    print("per-call overhead at n = 4, one matrix (µs)")
    head = f"{'op':<9}{'dtype':<9}{'xl fwd':>9}{'torch fwd':>11}{'xl fwd+bwd':>12}{'torch fwd+bwd':>15}"
    print(head)
    print("-" * len(head))
    for op in args.ops:
        for dtype in args.dtypes:
            xs = inputs(op, 4, 1, dtype, args.device, rng)
            ours, native = functions(op)
            (f_xl, fb_xl), (f_nt, fb_nt) = timers(ours, xs, rng), timers(native, xs, rng)
            t = [*paired_medians(f_xl, f_nt, repeat=repeat), *paired_medians(fb_xl, fb_nt, repeat=repeat)]
            t = [x * 1e6 for x in t]
            print(f"{op:<9}{dtype:<9}{t[0]:>9.1f}{t[1]:>11.1f}{t[2]:>12.1f}{t[3]:>15.1f}", flush=True)
            keys = ("xlinalg_fwd_us", "native_fwd_us", "xlinalg_fwd_bwd_us", "native_fwd_bwd_us")
            rows.append({"op": op, "dtype": dtype, **{k: round(v, 2) for k, v in zip(keys, t)}})
    return rows


def _row(r):
    ratio = r["xlinalg"] / r["reference"]
    print(
        f"{r['op']:<9}{r['dtype']:<9}{r['n']:>6}{r['batch']:>7}"
        f"{r['xlinalg'] * 1e3:>13.3f}{r['reference'] * 1e3:>16.3f}{ratio:>8.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
