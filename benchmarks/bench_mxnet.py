"""MXNet: forward+backward of ``xlinalg.mxnet`` against MXNet's own ``mx.nd.linalg``, in the
same process and run (CPU, ``--threads`` threads, 1 by default).

    python benchmarks/bench_mxnet.py [--ops potrf potrs] [--dtypes float64] [--sizes 8 32]
                                     [--threads 1] [--quick] [--json PATH]

Each timed step records the operator under ``mx.autograd.record()``, runs ``backward`` with
random head gradients into ``grad_req="write"`` buffers (every input; the GP: the covariance)
and waits for the gradients; the forward alone runs outside autograd and waits for its outputs.
xlinalg and the native function (see NATIVE; potrs: two trsm, MXNet has no potrs) alternate
round by round. Prints the ratio table and the summary of the targets (``benchmarks/harness.py``).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import json
import subprocess

from harness import GP, differentiated, environment, gp_nll, inputs, outputs, paired_medians, parse, print_results, run, write_json

ARGS = parse(__doc__)

#: Prints the kernels that MXNet's OpenBLAS and SciPy's pick for this CPU, as JSON.
_PROBE = """
import json, os, threadpoolctl, scipy.linalg, mxnet
def kernels(root):
    return next((d.get("architecture") for d in threadpoolctl.threadpool_info() if d["filepath"].startswith(root)), None)
print(json.dumps({"mxnet": kernels(os.path.dirname(mxnet.__file__)),
                  "scipy": kernels(os.path.join(os.path.dirname(os.path.dirname(scipy.__file__)), "scipy"))}))
"""


def native_blas_at_its_best() -> None:
    """MXNet 1.9.1 bundles OpenBLAS 0.3.13, which runs its generic SSE3 kernels ("Prescott") on
    x86 CPUs newer than itself, at a fraction of the BLAS's speed (an Intel CPU of family 6,
    model 207: MXNet's own ``gemm`` at n = 1024 several times slower). Where it would, this sets
    ``OPENBLAS_CORETYPE`` (read by each OpenBLAS as it loads, so before MXNet's import) to the
    kernels SciPy's newer OpenBLAS picks here: SciPy's keeps them, MXNet's takes the closest it
    has, and the native side runs at its best. The variable is recorded with the results; one
    set by the caller is left as it is."""
    if "OPENBLAS_CORETYPE" in os.environ:
        return
    probe = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    if found["mxnet"] == "Prescott" and found["scipy"] not in (None, "Prescott"):
        os.environ["OPENBLAS_CORETYPE"] = found["scipy"]


native_blas_at_its_best()

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

import xlinalg.mxnet as xl  # noqa: E402

NATIVE = {op: f"mx.nd.linalg.{op}" for op in ("potrf", "potri", "trsm", "trmm", "syrk", "gemm", "sumlogdiag", "syevd",
                                              "inverse", "det", "slogdet", "gelqf")}
NATIVE["potrs"] = "mx.nd.linalg.trsm twice (L, then Lᵀ)"
NATIVE[GP] = "mx.nd.linalg.potrf, trsm, sumlogdiag"
linalg = mx.nd.linalg


def _native(op):
    if op == "potrs":
        return lambda f, b: linalg.trsm(f, linalg.trsm(f, b), transpose=True)
    if op == GP:
        return gp_nll(linalg.potrf, linalg.trsm, linalg.sumlogdiag)
    return getattr(linalg, op)


def _ours(op):
    return gp_nll(xl.potrf, xl.trsm, xl.sumlogdiag) if op == GP else getattr(xl, op)


def steps(op, fn, arrays, wrt, heads):
    """``(forward, forward+backward)`` closures."""

    def forward():
        for y in outputs(op, fn(*arrays)):
            y.wait_to_read()

    def forward_backward():
        with mx.autograd.record():
            outs = outputs(op, fn(*arrays))
        mx.autograd.backward(list(outs), heads)
        for x in wrt:
            x.grad.wait_to_read()

    return forward, forward_backward


def measure(op, dtype, n, batch, rng):
    arrays = [mx.nd.array(x, dtype=dtype) for x in inputs(op, n, batch, dtype, rng)]
    wrt = [arrays[i] for i in differentiated(op, len(arrays))]
    for x in wrt:
        x.attach_grad()
    heads = [mx.nd.array(rng.standard_normal(y.shape), dtype=dtype) for y in outputs(op, _native(op)(*arrays))]
    (f_xl, fb_xl), (f_nt, fb_nt) = (steps(op, fn, arrays, wrt, heads) for fn in (_ours(op), _native(op)))
    t_xl, t_nt = paired_medians(fb_xl, fb_nt, rounds=ARGS.rounds)
    tf_xl, tf_nt = paired_medians(f_xl, f_nt, rounds=ARGS.rounds)
    return {"native_fwd": tf_nt, "xlinalg_fwd": tf_xl, "native_fwd_bwd": t_nt, "xlinalg_fwd_bwd": t_xl}


def main():
    rng = np.random.default_rng(0)
    print(f"MXNet {mx.__version__}, CPU")
    records, missing = run(ARGS, "mxnet", lambda *case: measure(*case, rng))
    print_results("mxnet", ARGS.threads, records, missing)
    if ARGS.json:
        write_json(
            ARGS.json, framework="mxnet", args=ARGS, records=records, missing=missing,
            native={op: NATIVE[op] for op in ARGS.ops},
            measures="forward: the operator outside autograd, waiting for its outputs; forward+backward: the operator "
            "under mx.autograd.record(), backward with random head gradients into grad_req='write' buffers (every "
            "input; the GP: the covariance), waiting for the gradients",
            env=environment("mxnet", packages=("mxnet", "numpy")),
        )


if __name__ == "__main__":
    main()
