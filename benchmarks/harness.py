"""Shared benchmark machinery: the cases and their inputs, the targets, paired median timings,
the run loop, the printed tables and the JSON results.

Each ``bench_<framework>.py`` times xlinalg against the native equivalent of the same framework
in the same process and run, forward and forward+backward, and prints the ratio xlinalg / native
of the medians: one row per case as it is measured, then the ratio table (operator × n × dtype,
each cell marked against its target) and the summary of the targets (:data:`TARGETS`, the one
table of them; ``benchmarks/plot.py`` uses it too). With ``--json PATH`` it also writes its
results, one record per operator × dtype × n × batch, and the environment they were measured in.

This module imports nothing but the standard library: :func:`parse` sets the thread variables
(``--threads``) before a script imports NumPy or its framework.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Format of the JSON files written by :func:`write_json` (bumped on incompatible changes).
SCHEMA = "xlinalg-benchmark/2"
#: Environment variables that set thread counts (:func:`parse` sets them), recorded with every result.
THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLINALG_NUM_THREADS", "XLA_FLAGS",
    "MXNET_ENGINE_TYPE", "MXNET_CPU_WORKER_NTHREADS",
)
_STARTED = (datetime.datetime.now(datetime.timezone.utc), time.perf_counter(), os.getloadavg()[0])

#: (n, batch): n = 8 in a batch of 4096, 32 in a batch of 256, the larger ones alone.
CASES = ((8, 4096), (32, 256), (256, 1), (1024, 1), (2048, 1))
DTYPES = ("float64", "float32")
#: Every operator with a native counterpart in some framework.
OPERATORS = (
    "potrf", "potri", "potrs", "trsm", "trmm", "syrk", "gemm", "sumlogdiag",
    "syevd", "inverse", "det", "slogdet", "gelqf",
)
#: The Gaussian-process negative log likelihood and its gradient with respect to the
#: covariance K: ``L = potrf(K)``, ``z = trsm(L, y)``, ``½ Σ z² + sumlogdiag(L)`` (:func:`gp_nll`).
GP = "gp_nll"
GP_PARTS = ("potrf", "trsm", "sumlogdiag")
OPS = (*OPERATORS, GP)
#: A case whose one forward+backward call (xlinalg's or the native one) is estimated, from
#: the same operator at the previous n, to take longer than this is skipped (and said so).
MAX_CALL_S = 1.5
#: Rounds per median: ``--repeat`` (``--quick``: 3), fewer (down to 3) where a call is so
#: slow that the rounds would take longer than this; each round lasts at least MIN_ROUND_S.
MAX_MEDIAN_S = 0.6
MIN_ROUND_S = 0.02


# ---------------------------------------------------------------------------------- targets
@dataclass(frozen=True)
class Target:
    """Ratio xlinalg / native (forward+backward medians) at most ``max`` for ``ops`` in
    ``frameworks`` at the matrix orders ``ns`` (empty: every n ≥ ``min_n``)."""

    workload: str
    max: float
    frameworks: tuple
    ops: tuple
    ns: tuple = ()
    min_n: int = 0

    def applies(self, framework: str, op: str, n: int) -> bool:
        return framework in self.frameworks and op in self.ops and (n in self.ns if self.ns else n >= self.min_n)


_ALL = ("torch", "jax", "mxnet")
#: The targets, 1 thread (2 threads are reported against the same numbers). A case has the
#: first target that applies to it (:func:`target_for`); NumPy has none (no backward pass).
#: The last one is judged on the per-call rows at n = 4 (``bench_torch.py``'s overhead table).
TARGETS = (
    Target("potrf, n = 256, 1024, 2048", 0.40, _ALL, ("potrf",), ns=(256, 1024, 2048)),
    Target("potrf, batch 4096 × 8×8", 0.50, _ALL, ("potrf",), ns=(8,)),
    Target("potri, potrs, GP NLL + gradient, n = 1024", 0.70, ("torch", "jax"), ("potri", "potrs", GP), ns=(1024,)),
    Target("every other operator, n ≥ 32", 1.00, _ALL, OPERATORS, min_n=32),
    Target("eager torch per-call cost, fwd+bwd, n = 4", 2.00, ("torch",), OPS, ns=(4,)),
)
#: The key of a record that the targets judge, and the one shown for NumPy (forward only).
RATIO = "ratio_fwd_bwd"


def target_for(framework: str, op: str, n: int) -> Target | None:
    return next((t for t in TARGETS if t.applies(framework, op, n)), None)


def grid_ratio(framework: str) -> str:
    """The ratio the tables show: forward+backward, or the forward for NumPy."""
    return "ratio_fwd" if framework == "numpy" else RATIO


def mark(framework: str, r: dict) -> str:
    """``✓``/``✗`` for a record judged by a target, else ``""``."""
    t = target_for(framework, r["op"], r["n"])
    if t is None or r.get(RATIO) is None:
        return ""
    return "✓" if r[RATIO] <= t.max else "✗"


# ---------------------------------------------------------------------------------- options
def parse(description: str, add_options=None) -> argparse.Namespace:
    """The common options (and those ``add_options(parser)`` adds), parsed; sets the thread
    variables for ``--threads`` (call it before importing NumPy or the framework)."""
    p = argparse.ArgumentParser(description=description.strip().splitlines()[0])
    p.add_argument("--ops", nargs="*", default=list(OPS), choices=OPS, metavar="OP", help=f"of {', '.join(OPS)}")
    p.add_argument("--dtypes", nargs="*", default=list(DTYPES), choices=DTYPES)
    p.add_argument("--sizes", nargs="*", type=int, default=[n for n, _ in CASES], help="matrix orders n, of 8 32 256 1024 2048")
    p.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP/XLA/framework threads (set before the import)")
    p.add_argument("--repeat", type=int, default=5, help="rounds per median")
    p.add_argument("--quick", action="store_true", help="3 rounds per median (a smoke run)")
    p.add_argument("--json", metavar="PATH", help="also write the results and the environment as JSON to PATH")
    if add_options:
        add_options(p)
    args = p.parse_args()
    args.rounds = 3 if args.quick else args.repeat
    set_threads(args.threads)
    return args


#: XLA flags at every thread count. jaxlib 0.10's batched LAPACK calls (triangular solves)
#: split their batch over XLA's intra-op pool and deadlock there (JAX's own gradients as well
#: as xlinalg's). With 1 thread the process has one CPU, so the pool one thread, and that does
#: not happen; with 2, sequential scheduling and no Eigen threads in the pool make it rarer
#: (bench_jax.py detects it and retries). XLA's own dot/elementwise code runs on one thread.
XLA_FLAGS = ("--xla_cpu_multi_thread_eigen=false", "--xla_cpu_enable_concurrency_optimized_scheduler=false")


def set_threads(n: int) -> None:
    """``n`` threads for everything that reads a variable, and the process (and its children)
    confined to ``n`` CPUs, so that thread pools sized by the CPU count (XLA's, the kernel
    layer's) have ``n`` threads too."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLINALG_NUM_THREADS"):
        os.environ[name] = str(n)
    names = {f.split("=")[0] for f in XLA_FLAGS}
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if f.split("=")[0] not in names]
    os.environ["XLA_FLAGS"] = " ".join([*flags, *XLA_FLAGS])
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if n < len(cpus):
        os.sched_setaffinity(0, cpus[-n:])


def cases(args):
    for op in args.ops:
        for dtype in args.dtypes:
            for n, batch in CASES:
                if n in args.sizes:
                    yield op, dtype, n, batch


# ---------------------------------------------------------------------------------- inputs
def inputs(op: str, n: int, batch: int, dtype: str, rng) -> tuple:
    """NumPy inputs of ``op``: SPD matrices for potrf and syevd (and the GP covariance),
    Cholesky factors for potri, potrs and sumlogdiag, well-conditioned triangles for trsm and
    trmm, ``I + G/(2√n)`` (|det| of order 1) for inverse, det, slogdet and gelqf; right-hand
    sides n × n (the GP's y: n × 1)."""
    import numpy as np

    shape = (batch, n, n) if batch > 1 else (n, n)
    a = rng.standard_normal(shape)

    def spd():
        return a @ np.swapaxes(a, -1, -2) / n + np.eye(n)

    def rhs(k=n):
        return rng.standard_normal((*shape[:-1], k))

    arrays = {
        "potrf": lambda: (spd(),), "syevd": lambda: (spd(),), GP: lambda: (spd(), rhs(1)),
        "potri": lambda: (np.linalg.cholesky(spd()),), "sumlogdiag": lambda: (np.linalg.cholesky(spd()),),
        "potrs": lambda: (np.linalg.cholesky(spd()), rhs()),
        "trsm": lambda: (np.tril(a) + np.sqrt(n) * np.eye(n), rhs()),
        "trmm": lambda: (np.tril(a), rhs()),
        "syrk": lambda: (a,), "gemm": lambda: (a, rhs(), rhs()),
    }.get(op, lambda: (np.eye(n) + a / (2 * np.sqrt(n)),))()
    return tuple(np.ascontiguousarray(x, dtype=dtype) for x in arrays)


def gp_nll(potrf, trsm, sumlogdiag):
    """The GP negative log likelihood (without its constant) made of the three functions:
    ``K, y -> ½ Σ z² + sumlogdiag(L)``, ``L = potrf(K)``, ``z = trsm(L, y)``."""

    def nll(k, y):
        chol = potrf(k)
        z = trsm(chol, y)
        return 0.5 * (z * z).sum(axis=(-2, -1)) + sumlogdiag(chol)

    return nll


def outputs(op: str, out) -> tuple:
    """The outputs of ``op`` (xlinalg's or the native function's) that a benchmark weights and
    differentiates, as a tuple: all of them but slogdet's sign (piecewise constant)."""
    out = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    return out[1:] if op == "slogdet" else out


def differentiated(op: str, nargs: int) -> tuple:
    """The positions of the inputs a gradient is taken with respect to: every input, but only
    the covariance K for the GP."""
    return (0,) if op == GP else tuple(range(nargs))


def kernel_layer(framework: str) -> dict:
    """xlinalg's kernel layer in this process (``xlinalg.lapack.config()``, less the BLAS), and
    ``operators``: those with compiled entries for ``framework`` (JAX: the XLA FFI ones)."""
    from xlinalg import lapack

    info = {k: v for k, v in lapack.config().items() if k != "blas"}
    ops = sorted(info.pop("operators")) if info["active"] else []
    if framework == "jax":
        try:
            from xlinalg.lapack import jax_ffi

            ops = sorted(jax_ffi.TABLE) if jax_ffi.library() is not None else []
            info["jax_ffi"] = jax_ffi.reason()
        except (ImportError, AttributeError) as exc:
            ops, info["jax_ffi"] = [], f"{type(exc).__name__}: {exc}"
    return {**info, "operators": ops}


def kernels_of(op: str, layer: dict) -> str:
    """``compiled``, ``rules`` (the pure Array-API rules) or ``mixed`` (the GP: some of its parts)."""
    compiled = [p in layer["operators"] for p in (GP_PARTS if op == GP else (op,))]
    return "compiled" if all(compiled) else "mixed" if any(compiled) else "rules"


# ---------------------------------------------------------------------------------- timing
def paired_medians(f, g, *, rounds: int, clock=time.perf_counter) -> tuple[float, float]:
    """Medians of the per-call times of ``f`` and ``g`` (``g`` may be None: then its time is
    None) over rounds that alternate between the two, so that load from other processes
    affects both alike, in the order f g, g f, f g, ...: timed first in every round, the same
    function measured up to 13 % slower in the median than itself timed second (batches of
    256 matrices of order 32). One warm-up call each, then one timed call that sets how many
    calls a round of at least MIN_ROUND_S makes (where that is one call for both, it is the
    first round); fewer rounds (not under 3) where they would take longer than MAX_MEDIAN_S."""
    fns = [h for h in (f, g) if h is not None]
    number, first = [], []
    for h in fns:
        h()
        t0 = clock()
        h()
        first.append(max(clock() - t0, 1e-7))
        number.append(max(1, int(MIN_ROUND_S / first[-1])))
        rounds = min(rounds, max(3, int(MAX_MEDIAN_S / first[-1])))
    times = [[t] for t in first] if max(number) == 1 else [[] for _ in fns]
    for r in range(rounds - len(times[0])):
        for k in range(len(fns)) if r % 2 == 0 else reversed(range(len(fns))):
            h = fns[k]
            t0 = clock()
            for _ in range(number[k]):
                h()
            times[k].append((clock() - t0) / number[k])
    medians = [statistics.median(t) for t in times]
    return medians[0], (medians[1] if g is not None else None)


def _too_slow(records, op, dtype, n, batch) -> str | None:
    """Why the case is skipped (its one call estimated above MAX_CALL_S), or None."""
    prev = [r for r in records if (r["op"], r["dtype"], r["batch"]) == (op, dtype, 1) and r["n"] < n]
    if batch != 1 or not prev:
        return None
    r = max(prev, key=lambda r: r["n"])
    times = [r[k] for k in ("xlinalg_fwd_bwd_ms", "native_fwd_bwd_ms", "native_fwd_ms") if r[k] is not None]
    estimate = max(times) / 1e3 * (n / r["n"]) ** 3
    if estimate > MAX_CALL_S:
        return f"skipped: one call ≈ {estimate:.1f} s (from n = {r['n']}), over {MAX_CALL_S:g} s"
    return None


def record(op, dtype, n, batch, *, kernels, native_fwd, xlinalg_fwd, xlinalg_fwd_bwd, native_fwd_bwd=None) -> dict:
    """One result (times in seconds in, milliseconds out). ``native_fwd_bwd`` is None where
    the framework has no backward pass (NumPy)."""

    def ms(t):
        return None if t is None else round(t * 1e3, 5)

    def ratio(a, b):
        return None if a is None or b is None else round(a / b, 4)

    return {
        "op": op, "dtype": dtype, "n": n, "batch": batch, "kernels": kernels,
        "native_fwd_ms": ms(native_fwd), "xlinalg_fwd_ms": ms(xlinalg_fwd),
        "native_fwd_bwd_ms": ms(native_fwd_bwd), "xlinalg_fwd_bwd_ms": ms(xlinalg_fwd_bwd),
        "ratio_fwd": ratio(xlinalg_fwd, native_fwd),
        "ratio_fwd_bwd": ratio(xlinalg_fwd_bwd, native_fwd_bwd),
        "ratio_fwd_bwd_to_native_fwd": ratio(xlinalg_fwd_bwd, native_fwd),
    }


def run(args, framework: str, measure) -> tuple[list, list]:
    """Measures every case: ``measure(op, dtype, n, batch)`` returns the keyword arguments of
    :func:`record` in seconds (``kernels`` optional: by default from this process's layer), or
    a string saying why there is no result.
    Prints a row per case as it comes; returns ``(records, missing)``, ``missing`` a dict per
    case without a result: op, dtype, n, batch and ``why`` (skipped: :data:`MAX_CALL_S`)."""
    layer = kernel_layer(framework)
    print(f"{framework}, {args.threads} thread(s); xlinalg kernel layer: "
          f"{'compiled (' + ', '.join(layer['operators']) + ')' if layer['operators'] else 'pure rules'}", flush=True)
    head = (f"{'op':<11}{'dtype':<9}{'n':>5}{'batch':>6}{'fwd+bwd ms: native':>20}{'xlinalg':>10}{'ratio':>7}"
            f"{'fwd ms: native':>16}{'xlinalg':>10}{'ratio':>7}  kernels")
    print(head + "\n" + "-" * len(head), flush=True)
    records, missing = [], []
    for op, dtype, n, batch in cases(args):
        result = _too_slow(records, op, dtype, n, batch) or measure(op, dtype, n, batch)
        if isinstance(result, str):
            missing.append({"op": op, "dtype": dtype, "n": n, "batch": batch, "why": result.replace(str(ROOT) + os.sep, "")})
            print(f"{op:<11}{dtype:<9}{n:>5}{batch:>6}  {result}", flush=True)
            continue
        r = record(op, dtype, n, batch, **{"kernels": kernels_of(op, layer), **result})
        records.append(r)
        cells = ("native_fwd_bwd_ms", "xlinalg_fwd_bwd_ms", "ratio_fwd_bwd", "native_fwd_ms", "xlinalg_fwd_ms", "ratio_fwd")
        t = [_fmt(r[k], 2 if k.startswith("ratio") else 3) for k in cells]
        print(f"{op:<11}{dtype:<9}{n:>5}{batch:>6}{t[0]:>20}{t[1]:>10}{t[2]:>7}{t[3]:>16}{t[4]:>10}{t[5]:>7}"
              f"  {r['kernels']} {mark(framework, r)}", flush=True)
    return records, missing


# ---------------------------------------------------------------------------------- tables
def _fmt(v, digits=2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def case_label(n: int, batch: int) -> str:
    return f"{n}×{batch}" if batch > 1 else str(n)


def describe(m: dict) -> str:
    """A case without a result, as text."""
    return f"{m['op']} {m['dtype']} n={m['n']} batch={m['batch']}: {m['why']}"


def ratio_grid(framework: str, records: list, missing: list = ()) -> tuple[list, list]:
    """(head, rows) of the ratio table: a row per operator and dtype, a column per case; each
    cell the ratio (forward+backward; NumPy: forward) and ✓/✗ where a target judges it,
    "skipped" or "no result" for a case in ``missing``."""
    key = grid_ratio(framework)
    present = {(r["n"], r["batch"]) for r in [*records, *missing]}
    cols = [c for c in CASES if c in present]
    by = {(r["op"], r["dtype"], r["n"]): f"{_fmt(r[key])} {mark(framework, r) or ' '}" for r in records}
    by.update({(m["op"], m["dtype"], m["n"]): "skipped" if m["why"].startswith("skipped") else "no result" for m in missing})
    head = ["op", "dtype", *(f"n = {case_label(*c)}" for c in cols)]
    rows = []
    for op in OPS:
        for dtype in DTYPES:
            cells = [by.get((op, dtype, n), "– ") for n, _ in cols]
            if any(c != "– " for c in cells):
                rows.append([op, dtype, *cells])
    return head, rows


def target_summary(runs: dict) -> tuple[list, list]:
    """(head, rows) of the summary of :data:`TARGETS` over ``runs``: ``{(framework, threads):
    records}`` (torch's per-call rows at n = 4 among its records). A cell: ✓ or ✗, the worst
    ratio and how many of the cases judged by that target meet it; "n/a" where the target does
    not apply to the framework, "–" where no case was measured."""
    keys = sorted(runs, key=lambda k: (_ALL.index(k[0]) if k[0] in _ALL else -1, k[1]))
    keys = [k for k in keys if k[0] in _ALL]
    head = ["workload", "target", *(f"{k[0]}, {k[1]} thr" for k in keys)]
    rows = []
    for t in TARGETS:
        row = [t.workload, f"≤ {t.max:.2f}"]
        for fw, threads in keys:
            judged = [r[RATIO] for r in runs[fw, threads] if r.get(RATIO) is not None and target_for(fw, r["op"], r["n"]) is t]
            met = sum(v <= t.max for v in judged)
            row.append("n/a" if fw not in t.frameworks else "–" if not judged
                       else f"{'✓' if met == len(judged) else '✗'} {max(judged):.2f} ({met}/{len(judged)})")
        rows.append(row)
    return head, rows


def text_table(head: list, rows: list) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = "  ".join(f"{h:<{w}}" for h, w in zip(head, widths))
    body = ["  ".join(f"{c:<{w}}" if i < 2 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    return "\n".join([line, "-" * len(line), *body])


def print_results(framework: str, threads: int, records: list, missing: list, extra: list = ()) -> None:
    """The ratio table and the summary of the targets (``extra``: more judged rows, torch's n = 4)."""
    what = "forward (no backward pass; no targets)" if framework == "numpy" else "forward+backward; ✓/✗: against the target"
    print(f"\n{framework}, {threads} thread(s): xlinalg / native, {what}")
    print(text_table(*ratio_grid(framework, records, missing)))
    for m in missing:
        print("no result:", describe(m))
    if framework in _ALL:
        print("\ntargets (1 thread; other thread counts reported against the same numbers)")
        print(text_table(*target_summary({(framework, threads): [*records, *extra]})))


# ---------------------------------------------------------------------------------- JSON
def _cpu_model() -> str:
    """The CPU's name, with its family and model numbers where /proc/cpuinfo has them (a
    virtual machine's name often tells no model apart)."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines() if ":" in line)
    except OSError:
        fields = {}
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    if "model name" not in fields:
        return platform.processor() or platform.machine()
    numbers = f" (family {fields['cpu family']}, model {fields['model']})" if "cpu family" in fields and "model" in fields else ""
    return fields["model name"] + numbers


def blas_kernels() -> dict:
    """The BLAS libraries loaded in this process (file name -> the kernels an OpenBLAS picked for
    this CPU, e.g. ``SkylakeX``; ``None`` where the library does not say), and
    ``OPENBLAS_CORETYPE`` where it is set."""
    import threadpoolctl

    found = {Path(d["filepath"]).name: d.get("architecture") for d in threadpoolctl.threadpool_info() if d["user_api"] == "blas"}
    if "OPENBLAS_CORETYPE" in os.environ:
        found["OPENBLAS_CORETYPE"] = os.environ["OPENBLAS_CORETYPE"]
    return found


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment(framework, *, packages, threads=None, clock="wall", device="cpu") -> dict:
    """What the numbers depend on: date, machine, load, versions of ``packages`` (names of
    installed distributions), thread settings (``threads``: the framework's own count), the
    kernel layer (:func:`kernel_layer`)."""
    versions = {"python": platform.python_version()}
    for name in ("xlinalg", *packages):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    start, t0, load0 = _STARTED
    return {
        "date": start.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "duration_s": round(time.perf_counter() - t0, 1),
        "git_commit": _git_commit(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_used": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_1min": {"start": round(load0, 2), "end": round(os.getloadavg()[0], 2)},
        "device": device,
        "clock": clock,
        "threads": {"framework": threads, **{k: os.environ[k] for k in THREAD_VARIABLES if k in os.environ}},
        "blas": blas_kernels(),
        "versions": versions,
        "kernel_layer": kernel_layer(framework),
    }


def command() -> str:
    """The command line that ran this script, with the script's path relative to the repository."""
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(ROOT)
    except ValueError:
        script = Path(script.name)
    return shlex.join(["python", str(script), *sys.argv[1:]])


def _dumps(doc: dict) -> str:
    """JSON with an indent, except that lists of records keep one record per line."""
    rows = {}
    for key, value in doc.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            rows[key] = "[\n  " + ",\n  ".join(json.dumps(v, ensure_ascii=False) for v in value) + "\n ]"
    text = json.dumps({k: (f"@@{k}@@" if k in rows else v) for k, v in doc.items()}, indent=1, ensure_ascii=False)
    # lists of numbers and names on one line
    text = re.sub(r"\[\n\s+([^\[\]{}]*?)\n\s*\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    for key, value in rows.items():
        text = text.replace(json.dumps(f"@@{key}@@"), value)
    return text


def write_json(path, *, framework, args, measures, native, records, env, missing=(), **extra) -> None:
    """Writes the results of one run to ``path``: ``framework`` (numpy, torch, jax, mxnet),
    ``measures`` (what the four times are), ``native`` (the native function of each operator),
    ``records`` and ``missing`` (from :func:`run`), ``env`` (from :func:`environment`) and any
    further sections."""
    settings = {k: v for k, v in vars(args).items() if k not in ("json", "worker")}
    doc = {
        "schema": SCHEMA,
        "framework": framework,
        "threads": args.threads,
        "command": command(),
        "measures": measures,
        "native": native,
        "settings": settings,
        "environment": env,
        "records": records,
        "missing": list(missing),
        **extra,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_dumps(doc) + "\n", encoding="utf-8")
    print(f"results written to {path}", file=sys.stderr)
