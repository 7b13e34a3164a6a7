"""The GPU benchmark: batched small matrices and large factorizations on one CUDA device,
xlinalg against native torch, JAX and CuPy in the same run (float32, forward + backward except
CuPy, which has no autodiff: its forward alone; medians of timed rounds, each synchronized).

    python benchmarks/bench_gpu.py [--json PATH] [--markdown PATH] [--rounds N] [--dry]

Each row is one workload of :data:`WORKLOADS` with its target for xlinalg. The xlinalg columns are
``xlinalg.torch`` on CUDA tensors in eager mode (the GPU kernel layer where the orders fit its
per-matrix entries, else the pure rules on torch's CUDA kernels), with the entries' arrays in each
layout (``XLINALG_CUDA_LAYOUT``: packed, the default, interleaved and staged), and ``xlinalg.jax``
under ``jit`` (the same entries through XLA's FFI, packed or staged; JAX has no interleaved call),
timed as native JAX is. The target holds when the fastest xlinalg column with right values meets
it. A framework that is missing, or a call that raises, gives an empty cell with the reason in the
JSON. ``--dry`` runs the same code on the CPU at small sizes (no GPU needed: it checks the script,
not the speed).

Every cell's values are checked as well as timed: the gradient (CuPy: the forward's outputs) of
one call against the same quantity computed by torch in float64 on the CPU, matrix by matrix. A
cell whose worst matrix is off by more than :data:`TOLERANCE` keeps its time but is marked, and
does not count for the target. Gradients are compared by their symmetric parts, ``(G + Gᵀ)/2``:
the frameworks agree on a symmetric input's gradient along symmetric directions, not on how
they spread it over the two triangles. The eigen loss ``Σλ + Σ W ∘ V ∘ V`` (``V`` the
eigenvectors in columns, ``W`` fixed) does not depend on the eigenvectors' signs, which the
frameworks choose differently, and its matrices have eigenvalues at least ``1/(2n)`` apart, so
that float32 gradients are well defined. The JSON and the markdown table are rewritten after
every workload: a run stopped early keeps the rows it finished. The exit status is 1 when an
xlinalg cell's values are wrong.
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

SCHEMA = "xlinalg-gpu-benchmark/3"


@dataclass(frozen=True)
class Workload:
    """``op`` (``"potrf"``, ``"syevd"`` or ``"gp_nll"``) on ``batch`` matrices of order ``n`` in
    ``dtype``; xlinalg's target in milliseconds (``None``: a row that informs, with no target);
    ``dry``: the (batch, n) of a ``--dry`` run."""

    label: str
    op: str
    batch: int
    n: int
    dtype: str
    target_ms: float | None
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
    # the host's cost of one call, forward and backward, where the GPU's work is nothing: eager
    # torch's autograd and launches against JAX's dispatch of a compiled program
    Workload("per-call cost: Cholesky, one 4×4", "potrf", 1, 4, "float32", None, (1, 4)),
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


#: The largest relative error of one matrix's values against the float64 reference for which a
#: cell counts as right (a wrong kernel is off by about 1; float32 rounding, even TF32 products
#: at n = 4096, stays well below 1e-2).
TOLERANCE = {"float32": 1e-2, "float64": 1e-8}


@dataclass
class Case:
    """The inputs of one workload: ``a`` the matrices (one matrix when ``batch`` is 1), ``y`` the
    GP's targets, ``weights`` the eigen loss's ``W``; ``reference`` the float64 values, per kind
    (``"grad"``, ``"forward"``), computed once."""

    w: Workload
    a: np.ndarray
    y: np.ndarray
    weights: np.ndarray
    reference: dict


def spd(rng, batch: int, n: int, dtype: str) -> np.ndarray:
    """``batch`` well-conditioned symmetric positive definite matrices (``G Gᵀ / n + I``)."""
    g = rng.standard_normal((batch, n, n)).astype(dtype)
    return (g @ np.swapaxes(g, -1, -2) / n + np.eye(n, dtype=dtype)).astype(dtype)


def separated(rng, batch: int, n: int, dtype: str) -> np.ndarray:
    """``batch`` symmetric matrices ``Q diag(λ) Qᵀ`` (``Q`` random orthogonal) with eigenvalues
    in [1, 2), at least ``1/(2n)`` apart: ``λ_k = 1 + (k + u_k/2)/n``, ``u_k`` uniform in [0, 1)."""
    q = np.linalg.qr(rng.standard_normal((batch, n, n)))[0]
    lam = 1 + (np.arange(n) + rng.uniform(0, 0.5, (batch, n))) / n
    a = (q * lam[..., None, :]) @ np.swapaxes(q, -1, -2)
    return ((a + np.swapaxes(a, -1, -2)) / 2).astype(dtype)


def case(w: Workload, dry: bool) -> Case:
    batch, n = w.dry if dry else (w.batch, w.n)
    rng = np.random.default_rng(0)
    a = (separated if w.op == "syevd" else spd)(rng, batch, n, w.dtype)
    if batch == 1:
        a = a[0]
    y = rng.standard_normal(a.shape[:-1] + (1,)).astype(w.dtype)
    return Case(w, a, y, rng.standard_normal((n, n)).astype(w.dtype), {})


def loss(op: str, ops: dict, m, y, weights):
    """The benchmark's scalar loss of ``m`` in any framework: ``ops`` names its ``potrf``,
    ``eigh`` (eigenvalues ascending, eigenvectors in columns), ``trsm`` (``L⁻¹ B``) and
    ``sumlogdiag``."""
    if op == "potrf":
        return ops["potrf"](m).sum()
    if op == "syevd":
        vals, vecs = ops["eigh"](m)
        return vals.sum() + (weights * vecs * vecs).sum()
    el = ops["potrf"](m)
    z = ops["trsm"](el, y)
    return 0.5 * (z * z).sum() + ops["sumlogdiag"](el).sum()


def symmetric_part(g: np.ndarray) -> np.ndarray:
    return (g + np.swapaxes(g, -1, -2)) / 2


def forward_values(op: str, outputs) -> np.ndarray:
    """What a forward-only cell is checked on, per matrix: ``L`` for potrf; for syevd the
    eigenvalues and the squared eigenvectors (both independent of the signs)."""
    if op == "potrf":
        return np.asarray(outputs, dtype=np.float64)
    vals, vecs = (np.asarray(x, dtype=np.float64) for x in outputs)
    return np.concatenate([vals, (vecs * vecs).reshape(vals.shape[:-1] + (-1,))], axis=-1)


def reference(c: Case, kind: str) -> np.ndarray:
    """The float64 values a cell is checked against (torch on the CPU, computed once per kind)."""
    if kind not in c.reference:
        import torch

        a = torch.tensor(c.a, dtype=torch.float64, requires_grad=kind == "grad")
        if kind == "forward":
            out = torch.linalg.cholesky(a) if c.w.op == "potrf" else torch.linalg.eigh(a)
            c.reference[kind] = forward_values(c.w.op, out)
        else:
            y, weights = (torch.tensor(x, dtype=torch.float64) for x in (c.y, c.weights))
            loss(c.w.op, _torch_ops(False), a, y, weights).backward()
            c.reference[kind] = symmetric_part(a.grad.numpy())
    return c.reference[kind]


def relative_error(values: np.ndarray, ref: np.ndarray, batched: bool) -> float:
    """The largest relative error (Frobenius norm) of one matrix's values against ``ref``."""
    shape = (ref.shape[0], -1) if batched else (1, -1)
    v, r = np.asarray(values, dtype=np.float64).reshape(shape), ref.reshape(shape)
    return float(np.max(np.linalg.norm(v - r, axis=1) / np.linalg.norm(r, axis=1)))


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


# ---- the frameworks: each returns (fn, sync, values) for a case: fn runs forward (+ backward),
# values() runs it once more and returns what the cell is checked on, as NumPy
def _torch_ops(xlinalg: bool) -> dict:
    import torch

    if xlinalg:
        import xlinalg.torch as xt

        def eigh(m):
            u, lam = xt.syevd(m)
            return lam, u.mT

        return {"potrf": xt.potrf, "eigh": eigh, "trsm": xt.trsm, "sumlogdiag": xt.sumlogdiag}
    return {
        "potrf": torch.linalg.cholesky,
        "eigh": torch.linalg.eigh,
        "trsm": lambda el, b: torch.linalg.solve_triangular(el, b, upper=False),
        "sumlogdiag": lambda el: torch.log(torch.diagonal(el, dim1=-2, dim2=-1)).sum(-1),
    }


def _torch_fn(c: Case, device: str, xlinalg: bool):
    import torch

    ta = torch.tensor(c.a, device=device, requires_grad=True)
    ty, tw = (torch.tensor(x, device=device) for x in (c.y, c.weights))
    ops = _torch_ops(xlinalg)

    def fn():
        ta.grad = None
        loss(c.w.op, ops, ta, ty, tw).backward()

    def values():
        fn()
        return symmetric_part(ta.grad.detach().double().cpu().numpy())

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    return fn, sync, values


def _jax_ops(xlinalg: bool) -> dict:
    import jax
    import jax.numpy as jnp

    if xlinalg:
        import xlinalg.jax as xj

        def eigh(m):
            u, lam = xj.syevd(m)
            return lam, jnp.swapaxes(u, -1, -2)

        return {"potrf": xj.potrf, "eigh": eigh, "trsm": xj.trsm, "sumlogdiag": xj.sumlogdiag}
    return {
        "potrf": jnp.linalg.cholesky,
        "eigh": jnp.linalg.eigh,
        "trsm": lambda el, b: jax.scipy.linalg.solve_triangular(el, b, lower=True),
        "sumlogdiag": lambda el: jnp.log(jnp.diagonal(el, axis1=-2, axis2=-1)).sum(-1),
    }


def _jax_fn(c: Case, device: str, xlinalg: bool):
    import jax

    # float64 workloads in float64: without this JAX would turn their arrays into float32 (every
    # other array has its dtype given, so the flag changes nothing else)
    jax.config.update("jax_enable_x64", True)
    dev = jax.devices("gpu" if device == "cuda" else "cpu")[0]
    ja, jy, jw = (jax.device_put(x, dev) for x in (c.a, c.y, c.weights))
    ops = _jax_ops(xlinalg)
    grad = jax.jit(jax.grad(lambda m: loss(c.w.op, ops, m, jy, jw)))
    return (
        lambda: grad(ja).block_until_ready(),
        lambda: None,
        lambda: symmetric_part(np.asarray(grad(ja), dtype=np.float64)),
    )


def _cupy_fn(c: Case, device: str):
    if device != "cuda":
        raise RuntimeError("CuPy runs on a GPU only")
    import cupy

    ca = cupy.asarray(c.a)
    if c.w.op == "potrf":
        fn = lambda: cupy.linalg.cholesky(ca)  # noqa: E731
    elif c.w.op == "syevd":
        fn = lambda: cupy.linalg.eigh(ca)  # noqa: E731
    else:
        raise RuntimeError("no forward-only GP in CuPy")
    out = lambda: cupy.asnumpy(fn()) if c.w.op == "potrf" else [cupy.asnumpy(x) for x in fn()]  # noqa: E731
    return fn, cupy.cuda.Device().synchronize, lambda: forward_values(c.w.op, out())


def measure(c: Case, framework: str, device: str, rounds: int) -> dict:
    """One cell: ``{"ms": median, "max_rel_error": e, "values_ok": e <= TOLERANCE}``, or
    ``{"error": why}`` where the framework is missing or its call raises."""
    layout = os.environ.get("XLINALG_CUDA_LAYOUT")
    runs_in = XLINALG.get(framework, (framework, None))[0]
    try:
        if framework in XLINALG:
            os.environ["XLINALG_CUDA_LAYOUT"] = XLINALG[framework][1]
        if runs_in == "torch":
            fn, sync, values = _torch_fn(c, device, framework in XLINALG)
        elif runs_in == "jax":
            fn, sync, values = _jax_fn(c, device, framework in XLINALG)
        else:
            fn, sync, values = _cupy_fn(c, device)
        ref = reference(c, "forward" if runs_in == "cupy" else "grad")
        error = relative_error(values(), ref, c.a.ndim == 3)
        return {"ms": median_ms(fn, sync, rounds), "max_rel_error": error, "values_ok": error <= TOLERANCE[c.w.dtype]}
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


def _cell(c: dict) -> str:
    if "ms" not in c:
        return "—"
    return f"{c['ms']:.3g}" + ("" if c["values_ok"] else " †")


def markdown(results: dict) -> str:
    """The results as a markdown table: milliseconds per framework, xlinalg's target and whether
    it holds (by the fastest xlinalg column whose values are right)."""
    lines = [
        f"GPU benchmark ({results['environment'].get('device')}; float32 unless named; forward + backward, CuPy forward only; medians, ms)",
        "",
        "| workload | " + " | ".join(FRAMEWORKS) + " | target (xlinalg) | holds |",
        "|---|" + "---|" * (len(FRAMEWORKS) + 2),
    ]
    off = []
    for row in results["rows"]:
        cells = [_cell(row[f]) for f in FRAMEWORKS]
        x = min((row[f]["ms"] for f in XLINALG if row[f].get("values_ok")), default=None)
        target = row["target_ms"]
        holds = "—" if x is None or target is None or results["dry"] else ("✓" if x <= target else "✗")
        lines.append(f"| {row['label']} | " + " | ".join(cells) + f" | {'—' if target is None else f'≤ {target}'} | {holds} |")
        off += [f"{row['label']}, {f}: {row[f]['max_rel_error']:.2g}" for f in FRAMEWORKS if row[f].get("values_ok") is False]
    if off:
        lines += ["", f"† values off the float64 reference (largest relative error of one matrix; tolerance {TOLERANCE}): " + "; ".join(off)]
    if len(results["rows"]) < len(WORKLOADS):
        lines += ["", f"(incomplete: {len(results['rows'])} of {len(WORKLOADS)} workloads measured)"]
    if results["dry"]:
        lines += ["", "(dry run on the CPU at small sizes: the numbers say nothing about the GPU)"]
    return "\n".join(lines) + "\n"


def write(results: dict, json_path: Path | None, markdown_path: Path | None) -> str:
    table = markdown(results)
    if json_path:
        json_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    if markdown_path:
        markdown_path.write_text(table)
    return table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--dry", action="store_true", help="on the CPU, small sizes (checks the script)")
    args = p.parse_args(argv)
    device = "cpu" if args.dry else "cuda"
    results = {"schema": SCHEMA, "dry": args.dry, "environment": versions(), "tolerance": TOLERANCE, "rows": []}
    for w in WORKLOADS:
        c = case(w, args.dry)
        row = {"label": w.label, "op": w.op, "batch": w.batch, "n": w.n, "dtype": w.dtype, "target_ms": w.target_ms}
        for framework in FRAMEWORKS:
            row[framework] = measure(c, framework, device, 3 if args.dry else args.rounds)
        results["rows"].append(row)
        print(w.label, {f: row[f].get("ms", row[f].get("error")) for f in FRAMEWORKS}, flush=True)
        write(results, args.json, args.markdown)  # a run stopped early keeps what it measured
    print(write(results, args.json, args.markdown))
    wrong = [f"{row['label']}, {f}" for row in results["rows"] for f in XLINALG if row[f].get("values_ok") is False]
    if wrong:
        print("bench_gpu.py: xlinalg's values are wrong in " + "; ".join(wrong), file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
