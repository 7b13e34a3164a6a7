"""The GPU benchmark: batched small matrices and large factorizations on one CUDA device,
xlinalg against native torch, JAX and CuPy in the same run (float32, forward + backward except
CuPy, which has no autodiff: its forward alone; medians of timed rounds, each synchronized).

    python benchmarks/bench_gpu.py [--json PATH] [--markdown PATH] [--rounds N] [--dry]

Each row is one workload of :data:`WORKLOADS` with its target for xlinalg. The xlinalg columns are
``xlinalg.torch`` on CUDA tensors in eager mode (the GPU kernel layer where the orders fit its
per-matrix entries, else the pure rules on torch's CUDA kernels), with the entries' arrays in each
layout (``XLINALG_CUDA_LAYOUT``: packed, the default, interleaved and staged), and ``xlinalg.jax``
under ``jit`` (the same entries through XLA's FFI, packed or staged; JAX has no interleaved
call), timed as native JAX is. The target holds when the fastest xlinalg column meets it. A
framework that is missing, or a call that raises, gives an empty cell with the reason in the
JSON. ``--dry`` runs the same code on the CPU at small sizes (no GPU needed: it checks the
script, not the speed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SCHEMA = "xlinalg-gpu-benchmark/2"


@dataclass(frozen=True)
class Workload:
    """``op`` (``"potrf"``, ``"syevd"`` or ``"gp_nll"``) on ``batch`` matrices of order ``n`` in
    ``dtype``; xlinalg's target in milliseconds; ``dry``: the (batch, n) of a ``--dry`` run."""

    label: str
    op: str
    batch: int
    n: int
    dtype: str
    target_ms: float
    dry: tuple = (16, 4)


WORKLOADS = (
    Workload("Cholesky, batch 100 000 × 16×16", "potrf", 100_000, 16, "float32", 0.20),
    Workload("Cholesky, batch 100 000 × 8×8", "potrf", 100_000, 8, "float32", 0.10),
    Workload("Cholesky, batch 10 000 × 16×16", "potrf", 10_000, 16, "float32", 0.05),
    Workload("symmetric eigen, batch 100 000 × 8×8", "syevd", 100_000, 8, "float32", 0.5),
    Workload("symmetric eigen, batch 100 000 × 16×16", "syevd", 100_000, 16, "float32", 1.0),
    Workload("symmetric eigen, batch 1000 × 64×64", "syevd", 1000, 64, "float32", 1.3),
    Workload("Cholesky, one 4096×4096 float32", "potrf", 1, 4096, "float32", 6.0, (1, 32)),
    Workload("Cholesky, one 4096×4096 float64", "potrf", 1, 4096, "float64", 6.0, (1, 32)),
    Workload("GP NLL + gradient, n = 4096", "gp_nll", 1, 4096, "float32", 7.0, (1, 32)),
)
#: the xlinalg columns: (the framework it runs in, its value of XLINALG_CUDA_LAYOUT)
XLINALG = {
    "xlinalg torch": ("torch", "packed"),
    "xlinalg torch interleaved": ("torch", "interleaved"),
    "xlinalg torch staged": ("torch", "staged"),
    "xlinalg jax": ("jax", "packed"),
    "xlinalg jax staged": ("jax", "staged"),
}
FRAMEWORKS = (*XLINALG, "torch", "jax", "cupy")


def spd(rng, batch: int, n: int, dtype: str) -> np.ndarray:
    """``batch`` well-conditioned symmetric positive definite matrices (``G Gᵀ / n + I``)."""
    g = rng.standard_normal((batch, n, n)).astype(dtype)
    return (g @ np.swapaxes(g, -1, -2) / n + np.eye(n, dtype=dtype)).astype(dtype)


#: Seconds of timed rounds per cell at most (at least 3 rounds): a slow native call (torch's
#: eigensolver on 1000 matrices of order 64 takes most of a second) must not eat the run's time.
CELL_BUDGET_S = 3.0
clock = time.perf_counter


def median_ms(fn, sync, rounds: int, budget_s: float = CELL_BUDGET_S) -> float:
    """Median over ``rounds`` synchronized calls of ``fn`` (fewer once ``budget_s`` seconds
    have gone, but at least 3), after two warm-up calls."""
    for _ in range(2):
        fn()
    sync()
    times = []
    start = clock()
    while len(times) < rounds and (len(times) < 3 or clock() - start < budget_s):
        t = clock()
        fn()
        sync()
        times.append(clock() - t)
    return 1e3 * statistics.median(times)


# ---- the frameworks: each returns (fn, sync) for a workload, fn running forward (+ backward) ---
def _torch_fn(w: Workload, a: np.ndarray, y: np.ndarray, device: str, xlinalg: bool):
    import torch

    ta = torch.tensor(a, device=device, requires_grad=True)
    ty = torch.tensor(y, device=device)
    if xlinalg:
        import xlinalg.torch as xt

        potrf, eigh, trsm, sumlogdiag = xt.potrf, lambda m: xt.syevd(m)[::-1], xt.trsm, xt.sumlogdiag
    else:
        potrf, eigh = torch.linalg.cholesky, torch.linalg.eigh
        trsm = lambda el, b: torch.linalg.solve_triangular(el, b, upper=False)  # noqa: E731
        sumlogdiag = lambda el: torch.log(torch.diagonal(el, dim1=-2, dim2=-1)).sum(-1)  # noqa: E731

    def loss():
        if w.op == "potrf":
            return potrf(ta).sum()
        if w.op == "syevd":
            vals, vecs = eigh(ta)
            return vals.sum() + vecs.sum()
        el = potrf(ta)
        z = trsm(el, ty)
        return 0.5 * (z * z).sum() + sumlogdiag(el).sum()

    def fn():
        ta.grad = None
        loss().backward()

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    return fn, sync


def _jax_fn(w: Workload, a: np.ndarray, y: np.ndarray, device: str, xlinalg: bool):
    import jax
    import jax.numpy as jnp

    dev = jax.devices("gpu" if device == "cuda" else "cpu")[0]
    ja, jy = jax.device_put(a, dev), jax.device_put(y, dev)
    if xlinalg:
        import xlinalg.jax as xj

        potrf, eigh, trsm, sumlogdiag = xj.potrf, lambda m: xj.syevd(m)[::-1], xj.trsm, xj.sumlogdiag
    else:
        potrf, eigh = jnp.linalg.cholesky, jnp.linalg.eigh
        trsm = lambda el, b: jax.scipy.linalg.solve_triangular(el, b, lower=True)  # noqa: E731
        sumlogdiag = lambda el: jnp.log(jnp.diagonal(el, axis1=-2, axis2=-1)).sum(-1)  # noqa: E731

    def loss(m):
        if w.op == "potrf":
            return potrf(m).sum()
        if w.op == "syevd":
            vals, vecs = eigh(m)
            return vals.sum() + vecs.sum()
        el = potrf(m)
        z = trsm(el, jy)
        return 0.5 * (z * z).sum() + sumlogdiag(el).sum()

    grad = jax.jit(jax.grad(loss))
    return (lambda: grad(ja).block_until_ready()), (lambda: None)


def _cupy_fn(w: Workload, a: np.ndarray, y: np.ndarray, device: str):
    if device != "cuda":
        raise RuntimeError("CuPy runs on a GPU only")
    import cupy

    ca = cupy.asarray(a)
    if w.op == "potrf":
        fn = lambda: cupy.linalg.cholesky(ca)  # noqa: E731
    elif w.op == "syevd":
        fn = lambda: cupy.linalg.eigh(ca)  # noqa: E731
    else:
        raise RuntimeError("no forward-only GP in CuPy")
    return fn, cupy.cuda.Device().synchronize


def measure(w: Workload, framework: str, device: str, rounds: int, dry: bool) -> dict:
    """``{"ms": median}`` or ``{"error": why}`` for one cell."""
    batch, n = w.dry if dry else (w.batch, w.n)
    rng = np.random.default_rng(0)
    a = spd(rng, batch, n, w.dtype)
    if batch == 1:
        a = a[0]
    y = rng.standard_normal(a.shape[:-1] + (1,)).astype(w.dtype)
    layout = os.environ.get("XLINALG_CUDA_LAYOUT")
    runs_in = XLINALG.get(framework, (framework, None))[0]
    try:
        if framework in XLINALG:
            os.environ["XLINALG_CUDA_LAYOUT"] = XLINALG[framework][1]
        if runs_in == "torch":
            fn, sync = _torch_fn(w, a, y, device, framework in XLINALG)
        elif runs_in == "jax":
            fn, sync = _jax_fn(w, a, y, device, framework in XLINALG)
        else:
            fn, sync = _cupy_fn(w, a, y, device)
        return {"ms": median_ms(fn, sync, rounds)}
    except Exception as exc:  # a missing framework or a failing native: an empty cell
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"}
    finally:
        if layout is None:
            os.environ.pop("XLINALG_CUDA_LAYOUT", None)
        else:
            os.environ["XLINALG_CUDA_LAYOUT"] = layout


def versions() -> dict:
    out = {"python": platform.python_version(), "machine": platform.machine()}
    for name in ("numpy", "torch", "jax", "cupy"):
        try:
            out[name] = __import__(name).__version__
        except Exception:
            out[name] = None
    try:
        import torch

        out["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except Exception:
        out["device"] = None
    import xlinalg.cuda

    out["xlinalg_cuda"] = {k: v for k, v in xlinalg.cuda.config().items() if k in ("active", "reason", "devices", "runtime_version")}
    return out


def markdown(results: dict) -> str:
    """The results as a markdown table: milliseconds per framework, xlinalg's target and whether
    it holds."""
    lines = [
        f"GPU benchmark ({results['environment'].get('device')}; float32 unless named; forward + backward, CuPy forward only; medians, ms)",
        "",
        "| workload | " + " | ".join(FRAMEWORKS) + " | target (xlinalg) | holds |",
        "|---|" + "---|" * (len(FRAMEWORKS) + 2),
    ]
    for row in results["rows"]:
        cells = [f"{c['ms']:.3g}" if "ms" in c else "—" for c in (row[f] for f in FRAMEWORKS)]
        x = min((row[f]["ms"] for f in XLINALG if "ms" in row[f]), default=None)
        holds = "—" if x is None or results["dry"] else ("✓" if x <= row["target_ms"] else "✗")
        lines.append(f"| {row['label']} | " + " | ".join(cells) + f" | ≤ {row['target_ms']} | {holds} |")
    if results["dry"]:
        lines += ["", "(dry run on the CPU at small sizes: the numbers say nothing about the GPU)"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--dry", action="store_true", help="on the CPU, small sizes (checks the script)")
    args = p.parse_args(argv)
    device = "cpu" if args.dry else "cuda"
    results = {"schema": SCHEMA, "dry": args.dry, "environment": versions(), "rows": []}
    for w in WORKLOADS:
        row = {"label": w.label, "op": w.op, "batch": w.batch, "n": w.n, "dtype": w.dtype, "target_ms": w.target_ms}
        for framework in FRAMEWORKS:
            row[framework] = measure(w, framework, device, 3 if args.dry else args.rounds, args.dry)
        results["rows"].append(row)
        print(w.label, {f: row[f].get("ms", row[f].get("error")) for f in FRAMEWORKS}, flush=True)
    table = markdown(results)
    print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str) + "\n")
    if args.markdown:
        args.markdown.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
