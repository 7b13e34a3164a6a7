"""``python -m xlinalg_conformance --backend NAME``: run the conformance suite and print the verdict."""

from __future__ import annotations

import argparse
import sys
import time

from . import checks as C
from .backends import BACKENDS, get_backend
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
    p.add_argument("-v", "--verbose", action="store_true", help="print each op × check as it finishes")
    args = p.parse_args(argv)

    try:
        backend = get_backend(args.backend)
    except (ValueError, ImportError, AttributeError) as exc:
        p.error(f"cannot load backend {args.backend!r}: {exc}")
    why = backend.available()
    if why:
        print(f"backend {backend.name} is not available: {why}", file=sys.stderr)
        return 2
    ops = args.ops or list(operators())
    unknown = set(ops) - set(operators())
    if unknown:
        p.error(f"unknown operator(s): {', '.join(sorted(unknown))}")

    def progress(r):
        if args.verbose:
            print(f"  {r.op:<13}{r.check:<12}{r.status:<5} {r.seconds:6.2f}s {r.message[:100]}", flush=True)

    t0 = time.perf_counter()
    results = run(backend, ops, args.checks, reference=args.reference, dtypes=tuple(args.dtypes), progress=progress)
    seconds = time.perf_counter() - t0
    print(f"conformance: backend {backend.name}, reference {args.reference}; worst error/tolerance "
          f"ratio per operator × check (pass ≤ 1)\n")
    print(table(results))
    text = summary(results)
    if text:
        print("\n" + text)
    failed = [r for r in results if r.status == "fail"]
    print(f"\n{len(results) - len(failed)}/{len(results)} cells pass ({sum(r.status == 'skip' for r in results)} skipped) in {seconds:.1f}s")
    if args.json:
        with open(args.json, "w") as f:
            f.write(to_json(results, backend.name, reference=args.reference, seconds=seconds,
                            capabilities={c: backend.sources.get(c, "declared") for c in sorted(backend.capabilities)}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
