"""PyTorch: forward+backward of ``xlinalg.torch`` against the native torch functions, in the
same process and run (CPU by default, ``--threads`` threads, 1 by default).

    python benchmarks/bench_torch.py [--ops potrf potrs] [--dtypes float64] [--sizes 8 32]
                                     [--threads 1] [--device cuda] [--clock cpu] [--quick]
                                     [--no-overhead] [--json PATH]

Each case times ``forward + torch.autograd.grad`` of a random-weighted sum of the outputs with
respect to every input (the GP: the covariance), and the forward alone (under
``torch.no_grad``), alternating round by round between xlinalg and the native function (see
NATIVE). Then the per-call cost at n = 4 (one matrix) in µs. Prints the ratio table and the
summary of the targets (``benchmarks/harness.py``).
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import GP, differentiated, environment, gp_nll, inputs, kernel_layer, kernels_of, outputs, paired_medians, parse, print_results, record, run, write_json


def _options(p):
    p.add_argument("--device", default="cpu")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall: elapsed time; cpu: CPU time of this process (steadier on a shared machine)")
    p.add_argument("--no-overhead", action="store_true", help="skip the per-call table at n = 4")


ARGS = parse(__doc__, _options)
CLOCK = time.perf_counter if ARGS.clock == "wall" else time.process_time

import numpy as np  # noqa: E402
import torch  # noqa: E402

import xlinalg.torch as xt  # noqa: E402

torch.set_num_threads(ARGS.threads)

NATIVE = {
    "potrf": "torch.linalg.cholesky",
    "potri": "torch.cholesky_inverse",
    "potrs": "torch.cholesky_solve",
    "trsm": "torch.linalg.solve_triangular(upper=False)",
    "trmm": "torch.tril(A) @ B",
    "syrk": "A @ A.mT",
    "gemm": "torch.baddbmm / torch.addmm",
    "sumlogdiag": "torch.diagonal(A).log().sum(-1)",
    "syevd": "torch.linalg.eigh",
    "inverse": "torch.linalg.inv",
    "det": "torch.linalg.det",
    "slogdet": "torch.linalg.slogdet",
    "gelqf": "torch.linalg.qr(A.mT), transposed",
    GP: "cholesky, solve_triangular, log(diagonal).sum",
}
_NATIVE = {
    "potrf": torch.linalg.cholesky,
    "potri": torch.cholesky_inverse,
    "potrs": lambda f, b: torch.cholesky_solve(b, f),
    "trsm": lambda a, b: torch.linalg.solve_triangular(a, b, upper=False),
    "trmm": lambda a, b: torch.tril(a) @ b,
    "syrk": lambda a: a @ a.mT,
    "gemm": lambda a, b, c: (torch.baddbmm if a.ndim == 3 else torch.addmm)(c, a, b),
    "sumlogdiag": lambda a: torch.diagonal(a, dim1=-2, dim2=-1).log().sum(-1),
    "syevd": lambda a: torch.linalg.eigh(a)[::-1],  # (vectors, values), in the order of xlinalg's outputs
    "inverse": torch.linalg.inv,
    "det": torch.linalg.det,
    "slogdet": torch.linalg.slogdet,
    "gelqf": lambda a: tuple(x.mT for x in torch.linalg.qr(a.mT)),
}
_NATIVE[GP] = gp_nll(_NATIVE["potrf"], _NATIVE["trsm"], _NATIVE["sumlogdiag"])


def functions(op):
    """``(xlinalg, native)``: each maps the inputs to the tuple of differentiated outputs."""
    ours = gp_nll(xt.potrf, xt.trsm, xt.sumlogdiag) if op == GP else getattr(xt, op)
    return (lambda *x: outputs(op, ours(*x))), (lambda *x: outputs(op, _NATIVE[op](*x)))


def timers(op, fn, xs, rng):
    """``(forward, forward+backward)`` closures for ``fn`` at ``xs``."""
    weights = [torch.tensor(rng.standard_normal(tuple(y.shape)), dtype=y.dtype, device=y.device) for y in fn(*xs)]
    wrt = [xs[i] for i in differentiated(op, len(xs))]
    sync = torch.cuda.synchronize if xs[0].is_cuda else (lambda: None)

    def forward():
        with torch.no_grad():
            fn(*xs)
        sync()

    def forward_backward():
        loss = sum((y * w).sum() for y, w in zip(fn(*xs), weights))
        torch.autograd.grad(loss, wrt)
        sync()

    return forward, forward_backward


def measure(op, dtype, n, batch, rng):
    """The four times of one case, in seconds."""
    xs = tuple(torch.tensor(x, device=ARGS.device, requires_grad=True) for x in inputs(op, n, batch, dtype, rng))
    (f_xl, fb_xl), (f_nt, fb_nt) = (timers(op, fn, xs, rng) for fn in functions(op))
    t_xl, t_nt = paired_medians(fb_xl, fb_nt, rounds=ARGS.rounds, clock=CLOCK)
    tf_xl, tf_nt = paired_medians(f_xl, f_nt, rounds=ARGS.rounds, clock=CLOCK)
    times = {"native_fwd": tf_nt, "xlinalg_fwd": tf_xl, "native_fwd_bwd": t_nt, "xlinalg_fwd_bwd": t_xl}
    return times if ARGS.device == "cpu" else {**times, "kernels": "rules"}  # the compiled layer is CPU-only


def overhead(rng) -> list:
    """The per-call cost at n = 4, one matrix: records (n = 4, batch = 1), printed in µs."""
    layer, rows = kernel_layer("torch"), []
    print("\nper-call cost at n = 4, one matrix (µs)")
    head = f"{'op':<11}{'dtype':<9}{'xl fwd':>9}{'torch fwd':>11}{'xl fwd+bwd':>12}{'torch fwd+bwd':>15}{'ratio':>7}"
    print(head + "\n" + "-" * len(head))
    for op in ARGS.ops:
        for dtype in ARGS.dtypes:
            t = measure(op, dtype, 4, 1, rng)
            rows.append(record(op, dtype, 4, 1, **{"kernels": kernels_of(op, layer), **t}))
            us = [t[k] * 1e6 for k in ("xlinalg_fwd", "native_fwd", "xlinalg_fwd_bwd", "native_fwd_bwd")]
            print(f"{op:<11}{dtype:<9}{us[0]:>9.1f}{us[1]:>11.1f}{us[2]:>12.1f}{us[3]:>15.1f}{us[2] / us[3]:>7.2f}", flush=True)
    return rows


def main():
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, device {ARGS.device}, {torch.get_num_threads()} threads, {ARGS.clock} clock")
    records, missing = run(ARGS, "torch", lambda *case: measure(*case, rng))
    small = [] if ARGS.no_overhead else overhead(rng)
    print_results("torch", ARGS.threads, records, missing, small)
    if ARGS.json:
        write_json(
            ARGS.json, framework="torch", args=ARGS, records=records, missing=missing,
            native={op: NATIVE[op] for op in ARGS.ops},
            measures="forward: the operator under torch.no_grad; forward+backward: the operator, a random-weighted "
            "sum of its outputs and torch.autograd.grad with respect to every input (the GP: the covariance)",
            env=environment("torch", packages=("torch", "numpy"), threads=torch.get_num_threads(), clock=ARGS.clock,
                            device=ARGS.device),
            overhead_n4=small,
        )


if __name__ == "__main__":
    main()
