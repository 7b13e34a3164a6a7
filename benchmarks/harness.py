"""Shared benchmark machinery: median timings, sizes, the ratio table.

Benchmarks are not tests: each script times xlinalg against the native equivalent of the same
framework in the same process and run, and prints the ratio of medians.
"""

from __future__ import annotations

import argparse
import statistics
import time

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
