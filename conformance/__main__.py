"""``python -m xlinalg_conformance --backend NAME``: run the conformance suite and print the verdict."""

from __future__ import annotations

import argparse
import sys
import time

from . import checks as C
from . import report
from .backends import BACKENDS, backend_for_command
from .runner import operators, run, summary, table, to_json
from .samples import DTYPES


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m xlinalg_conformance", description=__doc__)
    p.add_argument("--backend", default="numpy", help=f"one of {', '.join(BACKENDS)}, or module:attr")
    p.add_argument("--ops", nargs="*", default=None, help="operators (default: all)")
    p.add_argument("--checks", nargs="*", default=None, choices=C.CHECKS, help="checks (default: all)")
    p.add_argument("--dtypes", nargs="*", default=list(DTYPES), choices=DTYPES)
    p.add_argument("--reference", default="numpy", help="backend the cross check compares with")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    p.add_argument("--markdown", default=None, metavar="PATH", help="also write a report of every failing sample (Markdown)")
    p.add_argument("--html", default=None, metavar="PATH", help="the same report as one self-contained HTML page")
    p.add_argument("-v", "--verbose", action="store_true", help="print each op × check as it finishes")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a progress line on stderr (default: when stderr is a terminal)")
    p.add_argument("--isolate", action="store_true", default=None,
                   help="run each operator in its own process: a crash fails that operator only (default: as the backend declares)")
    p.add_argument("--known-failures", default=None, metavar="PATH",
                   help="TOML/JSON file of known failing operator × check cells: they show as xfail, and as XPASS when they pass "
                        "(default: the backend's declared file)")
    args = p.parse_args(argv)

    backend = backend_for_command(p, args.backend)
    if backend is None:
        return 2
    ops = args.ops or list(operators())
    unknown = set(ops) - set(operators())
    if unknown:
        p.error(f"unknown operator(s): {', '.join(sorted(unknown))}")

    checks = args.checks or list(C.CHECKS)
    total, done = len(ops) * len(checks), [0]
    show_progress = sys.stderr.isatty() if args.progress is None else args.progress

    def progress(r):
        done[0] += 1
        if args.verbose:
            print(f"  {r.op:<13}{r.check:<12}{r.status:<5} {r.seconds:6.2f}s {r.message[:100]}", flush=True)
        if show_progress:
            end = "\n" if done[0] == total else ""
            print(f"\r[{done[0]}/{total}] {r.op} × {r.check}: {r.status}".ljust(60), end=end, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    try:
        results = run(args.backend, ops, args.checks, reference=args.reference, dtypes=tuple(args.dtypes), progress=progress,
                      isolate=args.isolate, known_failures=args.known_failures)
    except (ValueError, OSError) as exc:  # an unreadable known-failures file, a backend isolation cannot load
        p.error(str(exc))
    seconds = time.perf_counter() - t0
    print(f"conformance: backend {backend.name}, reference {args.reference}; worst error/tolerance "
          f"ratio per operator × check (pass ≤ 1)\n")
    print(table(results))
    text = summary(results)
    if text:
        print("\n" + text)
    failed = [r for r in results if r.status == "fail"]
    counts = ", ".join(f"{sum(r.status == k for r in results)} {k}" for k in ("skip", "declared", "xfail", "xpass")
                       if any(r.status == k for r in results))
    print(f"\n{len(results) - len(failed)}/{len(results)} cells pass ({counts or 'none skipped'}) in {seconds:.1f}s")
    meta = report.metadata(backend, args.reference)
    if args.json:
        with open(args.json, "w") as f:
            f.write(to_json(results, backend.name, seconds=seconds, **{k: v for k, v in meta.items() if k != "backend"}))
    for path, render in ((args.markdown, report.markdown), (args.html, report.html)):
        if path:
            with open(path, "w", encoding="utf-8") as f:
                f.write(render(results, meta))
    return 1 if failed else 0  # xfail and XPASS cells do not count


if __name__ == "__main__":
    sys.exit(main())
