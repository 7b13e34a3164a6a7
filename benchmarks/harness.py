"""Shared benchmark machinery: median timings, sizes, the ratio table, the JSON results.

Benchmarks are not tests: each script times xlinalg against the native equivalent of the same
framework in the same process and run, and prints the ratio of medians. With ``--json PATH``
it also writes its results, one record per operator × dtype × n × batch, and the environment
they were measured in (:func:`write_json`; ``benchmarks/plot.py`` turns them into plots and
the tables of docs/benchmarks.md).
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
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Format of the JSON files written by :func:`write_json` (bumped on incompatible changes).
SCHEMA = "xlinalg-benchmark/1"
#: Environment variables that set thread counts, recorded with every result.
THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS",
    "MXNET_ENGINE_TYPE", "MXNET_CPU_WORKER_NTHREADS",
)
_STARTED = (datetime.datetime.now(datetime.timezone.utc), time.perf_counter(), os.getloadavg()[0])

#: (n, batch) cases of the issue: n = 8 with batch 4096, 32 with 256, 256 and 1024 unbatched.
CASES = ((8, 4096), (32, 256), (256, 1), (1024, 1))
DTYPES = ("float64", "float32")
OPS = ("potrf", "trsm", "syevd", "inverse")


def median_time(fn, *, repeat: int = 7, min_time: float = 0.05) -> float:
    """Median over ``repeat`` rounds of the mean time per call; each round calls ``fn``
    enough times to last about ``min_time`` seconds. One warm-up call first."""
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    number = max(1, int(min_time / once))
    rounds = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        rounds.append((time.perf_counter() - t0) / number)
    return statistics.median(rounds)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--ops", nargs="*", default=list(OPS))
    p.add_argument("--dtypes", nargs="*", default=list(DTYPES))
    p.add_argument("--sizes", nargs="*", type=int, default=[n for n, _ in CASES], help="matrix orders n")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    p.add_argument(
        "--json", metavar="PATH",
        help="also write the results and the environment as JSON to PATH (times the forward too)",
    )
    return p


def cases(args):
    for op in args.ops:
        for dtype in args.dtypes:
            for n, batch in CASES:
                if n in args.sizes:
                    yield op, dtype, n, batch


def print_table(rows, *, reference: str, target: float | None = None) -> None:
    """``rows``: dicts with op, dtype, n, batch, xlinalg and reference seconds."""
    head = f"{'op':<9}{'dtype':<9}{'n':>6}{'batch':>7}{'xlinalg ms':>13}{reference + ' ms':>16}{'ratio':>8}"
    print(head)
    print("-" * len(head))
    for r in rows:
        ratio = r["xlinalg"] / r["reference"]
        flag = "" if target is None or ratio <= target else "  > target"
        print(
            f"{r['op']:<9}{r['dtype']:<9}{r['n']:>6}{r['batch']:>7}"
            f"{r['xlinalg'] * 1e3:>13.3f}{r['reference'] * 1e3:>16.3f}{ratio:>8.2f}{flag}"
        )
    if target is not None:
        print(f"target: ratio <= {target}")


def record(op, dtype, n, batch, *, native_fwd, xlinalg_fwd, xlinalg_fwd_bwd, native_fwd_bwd=None) -> dict:
    """One result (times in seconds in, milliseconds out). ``native_fwd_bwd`` is None where
    the framework has no backward pass (NumPy)."""

    def ms(t):
        return None if t is None else round(t * 1e3, 5)

    def ratio(a, b):
        return None if a is None or b is None else round(a / b, 4)

    return {
        "op": op, "dtype": dtype, "n": n, "batch": batch,
        "native_fwd_ms": ms(native_fwd), "xlinalg_fwd_ms": ms(xlinalg_fwd),
        "native_fwd_bwd_ms": ms(native_fwd_bwd), "xlinalg_fwd_bwd_ms": ms(xlinalg_fwd_bwd),
        "ratio_fwd": ratio(xlinalg_fwd, native_fwd),
        "ratio_fwd_bwd": ratio(xlinalg_fwd_bwd, native_fwd_bwd),
        "ratio_fwd_bwd_to_native_fwd": ratio(xlinalg_fwd_bwd, native_fwd),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment(*, packages, threads=None, clock="wall", device="cpu") -> dict:
    """What the numbers depend on: date, machine, load, versions of ``packages`` (names of
    installed distributions), thread settings (``threads``: the framework's own count)."""
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
        "load_average_1min": {"start": round(load0, 2), "end": round(os.getloadavg()[0], 2)},
        "device": device,
        "clock": clock,
        "threads": {"framework": threads, **{k: os.environ[k] for k in THREAD_VARIABLES if k in os.environ}},
        "versions": versions,
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
            rows[key] = "[\n  " + ",\n  ".join(json.dumps(v) for v in value) + "\n ]"
    text = json.dumps({k: (f"@@{k}@@" if k in rows else v) for k, v in doc.items()}, indent=1)
    # lists of numbers and names on one line
    text = re.sub(r"\[\n\s+([^\[\]{}]*?)\n\s*\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    for key, value in rows.items():
        text = text.replace(json.dumps(f"@@{key}@@"), value)
    return text


def write_json(path, *, framework, args, measures, native, records, env, target=None, missing=(), **extra) -> None:
    """Writes the results of one run to ``path``: ``framework`` (numpy, torch, jax, mxnet),
    ``measures`` (what the four times are), ``native`` (the native function of each operator),
    ``records`` (from :func:`record`), ``env`` (from :func:`environment`), ``target`` (a dict:
    ``ratio`` (the key it applies to), ``max`` and ``min_n``; or None), ``missing`` (cases
    without a result, as text) and any further sections."""
    settings = {k: v for k, v in vars(args).items() if k not in ("json", "case")}
    settings["rounds_per_median"] = 3 if settings.get("quick") else settings.get("repeat")  # as the scripts do
    doc = {
        "schema": SCHEMA,
        "framework": framework,
        "command": command(),
        "measures": measures,
        "native": native,
        "target": target,
        "settings": settings,
        "environment": env,
        "records": records,
        "missing": [str(m).replace(str(ROOT) + os.sep, "") for m in missing],
        **extra,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_dumps(doc) + "\n")
    print(f"results written to {path}", file=sys.stderr)
