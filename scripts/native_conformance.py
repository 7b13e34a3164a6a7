"""The native-conformance page: the conformance suite run on the frameworks' own functions.

    python scripts/native_conformance.py run --backend torch-native --out DIR
        run every operator × check of one native backend (with its known-failures file),
        run the reproduction of every listed failure, write DIR/<backend>.json
    python scripts/native_conformance.py page --results DIR --page docs/native-conformance.md
        write the page from the JSON files in DIR

``scripts/native_conformance.sh`` does both for every native backend, MXNet's in its own
environment.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

#: the native backends, in page order, and the distribution whose version each reports
BACKENDS = {"torch-native": "torch", "jax-native": "jax", "jax-native-jit": "jax", "mxnet-native": "mxnet"}
#: seconds a reproduction may run
REPRO_TIMEOUT = 120


def run(backend: str, out: Path) -> None:
    """Run ``backend`` and its reproductions; write ``out/<backend>.json``."""
    from native_conformance_page import describe_declarations
    from xlinalg_conformance import known_failures as kf
    from xlinalg_conformance.backends import get_backend
    from xlinalg_conformance.runner import run as run_suite
    from xlinalg_conformance.runner import summary, table

    b = get_backend(backend)
    known = kf.load(b.known_failures)
    t0 = time.perf_counter()
    results = run_suite(backend, progress=lambda r: print(f"  {r.op:<13}{r.check:<14}{r.status:<9}{r.seconds:7.2f}s", flush=True))
    seconds = time.perf_counter() - t0
    print(table(results) + "\n\n" + summary(results), flush=True)
    repros = {f"{op}.{check}": reproduce(entry.repro) for (op, check), entry in known.items() if entry.repro}
    data = {
        "backend": backend,
        "framework": BACKENDS[backend],
        "version": metadata.version(BACKENDS[backend]),
        "numpy": metadata.version("numpy"),
        "python": platform.python_version(),
        "seconds": round(seconds, 1),
        "declarations": describe_declarations(b),
        "results": [_result(r) for r in results],
        "known_failures": {f"{e.op}.{e.check}": {"reason": e.reason, "kind": e.kind, "link": e.link, "repro": e.repro} for e in known.values()},
        "repros": repros,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{backend}.json").write_text(json.dumps(data, indent=1) + "\n")


def _result(r) -> dict:
    ratio = r.ratio if r.ratio is None or r.ratio != float("inf") else "inf"
    return {
        "op": r.op,
        "check": r.check,
        "status": r.status,
        "ratio": ratio,
        "message": r.message,
        "sample": r.sample,
        "reason": r.reason,
        "samples": r.samples,
        "failed": r.failed,
        "declared": r.declared,
        "crashed": r.crashed,
        "seconds": round(r.seconds, 2),
    }


def reproduce(code: str) -> dict:
    """Run ``code`` in a fresh interpreter (this one); its exit status and output."""
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, errors="replace", timeout=REPRO_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"status": None, "output": f"(did not finish in {REPRO_TIMEOUT} s)"}
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip() and "Warning" not in ln and not ln.startswith("  warnings.warn")]
    return {"status": proc.returncode, "output": "\n".join(lines[-12:])}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run one native backend and its reproductions")
    r.add_argument("--backend", required=True, choices=list(BACKENDS))
    r.add_argument("--out", required=True, type=Path)
    g = sub.add_parser("page", help="write the page from the results")
    g.add_argument("--results", required=True, type=Path)
    g.add_argument("--page", required=True, type=Path)
    args = p.parse_args(argv)
    if args.command == "run":
        run(args.backend, args.out)
    else:
        from native_conformance_page import write_page

        write_page(args.results, args.page, list(BACKENDS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
