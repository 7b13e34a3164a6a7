"""Property-based fuzzing of a backend: hypothesis draws calls, the suite's checks judge them.

``python -m xlinalg_conformance.fuzz --backend torch --ops potrf trsm --budget 200``

For each operator, hypothesis generates :class:`FuzzCase` s — a parameter combination (grid
flags, scalar parameters such as ``alpha`` drawn freely), a matrix order from 0, batch shapes
per argument that broadcast against each other (empty batches included), a dtype, a
conditioning target, the kind of garbage in the unread triangle of structured arguments
(noise, huge values, inf, NaN) and a seed for the entries — and runs the per-sample checks of
:mod:`xlinalg_conformance.checks` (forward against the float64 reference, finite differences,
adjoint pairing, structure, batching, dtype, no mutation, accumulation, cross-backend
agreement, ...) on each, with the same tolerances as the fixed samples. The first failing case
is shrunk by hypothesis to a minimal one and reported as JSON, which ``--replay`` runs again
(the entries are a function of the seed: the case is reproducible exactly).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from . import checks as C
from .backends import BACKENDS, backend_for_command, get_backend
from .samples import DTYPES, Sample, param_combos

#: kinds of values in the triangle a structured argument's operator must not read
GARBAGE = ("noise", "huge", "nan", "inf")
#: default generation limits: largest matrix order, most batch entries of a call
MAX_N, MAX_BATCH = 8, 12
#: conditioning targets are 10**e for e drawn from 0, 0.1, ..., MAX_LOG_COND. Beyond about
#: 10**0.5 the finite differences of ``fd_grad`` (fixed relative step 1e-3) have a truncation
#: error above their κ² tolerance (syevd from 10×, potrf and trsm from 30× — see
#: docs/fuzzing.md); the other checks' tolerances hold at any conditioning.
MAX_LOG_COND = 0.5
#: cases between two calls of the backend's ``release`` (it frees compiled programs)
RELEASE_EVERY = 1000


@dataclass(frozen=True)
class FuzzCase:
    """One generated call: everything needed to rebuild its inputs exactly.

    ``batches`` has one batch shape per array argument (they broadcast together);
    ``conditioning`` (≥ 1) scales how ill-conditioned the arguments' domains are drawn;
    ``garbage`` is one of :data:`GARBAGE`; ``seed`` fixes every entry."""

    op: str
    params: dict = field(hash=False)
    dtype: str
    n: int
    batches: tuple
    conditioning: float
    garbage: str
    seed: int

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "batches": [list(b) for b in self.batches]}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FuzzCase:
        d = json.loads(text)
        return cls(d["op"], dict(d["params"]), d["dtype"], int(d["n"]), tuple(tuple(b) for b in d["batches"]),
                   float(d["conditioning"]), d["garbage"], int(d["seed"]))

    @property
    def batch_label(self) -> str:
        """``(3,)`` when every argument has that batch (what the ``vmap`` check maps over),
        else the per-argument batches joined by ``x``."""
        labels = [str(tuple(b)).replace(" ", "") for b in self.batches]
        return labels[0] if len(set(labels)) == 1 else "x".join(labels)

    def sample(self) -> Sample:
        """The case as a :class:`~xlinalg_conformance.samples.Sample` the checks take."""
        arrays, kappa = draw_inputs(self)
        return Sample(self.op, dict(self.params), tuple(x.astype(self.dtype) for x in arrays), self.dtype, self.n,
                      self.batch_label, float(kappa), self.seed)


# ---- inputs ---------------------------------------------------------------------------------
def _draw_argument(rng, domain, b, shape, lower, c) -> tuple[np.ndarray, float]:
    """``(array, kappa)`` of core ``shape`` with batch ``b`` from ``domain``
    (:mod:`xlinalg.core.samples`), ``c`` times worse conditioned than the suite's samples."""
    from xlinalg.core import samples as gen

    if domain == "general" or len(shape) < 2:
        return rng.standard_normal((*b, *shape)), 1.0
    r, cols = shape
    if domain in ("nonsingular", "full_rank"):
        a = gen.well_conditioned(rng, b, r, cols, 1.0, 2.0 * c)
        return a, gen.cond(a)
    if domain == "spd":  # eigenvalues (3c)**u for separated u in about [0, 1]: positive, spread over [1, 3c]
        a = gen.symmetric_with_spectrum(rng, b, (3.0 * c) ** gen.separated_spectrum(rng, b, r, 0.1, 0.9))
        return a, gen.cond(a)
    if domain == "spectrum":  # one gap narrowed c times
        lam = gen.separated_spectrum(rng, b, r, -2.0, 2.0)
        if r >= 2:
            k = int(rng.integers(0, r - 1))
            lam[..., k + 1] = lam[..., k] + (lam[..., k + 1] - lam[..., k]) / c
        return gen.symmetric_with_spectrum(rng, b, lam), gen.spectrum_sensitivity(lam)
    if domain in ("triangular", "factor"):  # rows scaled by factors in [1/c, 1]
        t = gen.triangular(rng, b, r, lower, positive=domain == "factor") * rng.uniform(1.0 / c, 1.0, (*b, r, 1))
        k = gen.cond(t)
        return t, k * k if domain == "factor" else k
    if domain == "positive_diagonal":
        a = rng.standard_normal((*b, r, cols))
        idx = np.arange(r)
        a[..., idx, idx] = rng.uniform(1.5, 3.0, (*b, r))
        return a, 3.0
    raise ValueError(f"unknown domain {domain!r}")


def _with_garbage(rng, x, lower, kind) -> np.ndarray:
    """``x`` with values of ``kind`` (:data:`GARBAGE`) in the triangle opposite to ``lower``."""
    values = {"noise": lambda: 3.0 * rng.standard_normal(x.shape), "huge": lambda: 1e30 * rng.standard_normal(x.shape),
              "nan": lambda: np.full(x.shape, np.nan), "inf": lambda: np.full(x.shape, np.inf)}[kind]()
    keep = np.tril(np.ones(x.shape[-2:], bool)) if lower else np.triu(np.ones(x.shape[-2:], bool))
    return np.where(keep, x, values)


def draw_inputs(case: FuzzCase) -> tuple[tuple, float]:
    """``(arrays, kappa)``: the case's float64 inputs and their condition bound."""
    from xlinalg.core.samples import core_shapes

    o = C.spec(case.op)
    shapes = core_shapes(o, case.n, case.params)
    if shapes is None:
        raise ValueError(f"{case.op}: no valid input of order {case.n} with {case.params}")
    rng = np.random.default_rng(case.seed)
    lower = o.lower(case.params)
    arrays, kappa = [], 1.0
    for arg, shape, b in zip(o.args, shapes, case.batches):
        x, k = _draw_argument(rng, arg.domain, tuple(b), shape, lower, case.conditioning)
        if arg.structure != "general":
            x = _with_garbage(rng, x, lower, case.garbage)
        arrays.append(np.ascontiguousarray(x, dtype=np.float64))
        kappa = max(kappa, k)
    if o.condition is not None:
        kappa = max(kappa, float(o.condition(arrays, case.params)))
    return tuple(arrays), kappa


# ---- strategies -----------------------------------------------------------------------------
def _strategies():
    from hypothesis import assume
    from hypothesis import strategies as st

    def scalar(values):
        """A scalar parameter: one of the grid's values, or any of magnitude 0.1 to 3."""
        free = st.builds(lambda m, neg: -m if neg else m, st.floats(0.1, 3.0), st.booleans())
        return st.one_of(st.sampled_from(values), free)

    @st.composite
    def batches(draw, nargs, max_batch):
        """One batch shape per argument, all suffixes of a common batch with some axes 1
        (sizes shrink towards 1; 0, an empty batch, is drawn as often as 2 and 3)."""
        common = draw(st.lists(st.sampled_from((1, 2, 3, 0)), max_size=3))
        assume(int(np.prod(common)) <= max_batch)
        out = []
        for _ in range(nargs):
            b = common[draw(st.integers(0, len(common))):]
            ones = draw(st.lists(st.booleans(), min_size=len(b), max_size=len(b)))
            out.append(tuple(1 if one else d for d, one in zip(b, ones)))
        return tuple(out)

    @st.composite
    def cases(draw, op, dtypes=DTYPES, max_n=MAX_N, max_batch=MAX_BATCH, max_log_cond=MAX_LOG_COND):
        from xlinalg.core.samples import core_shapes

        o = C.spec(op)
        params = dict(draw(st.sampled_from(param_combos(op))))
        for name, default in o.params.items():
            if isinstance(default, float):
                values = sorted({float(p[name]) for p in param_combos(op)}, key=lambda v: (v != default, v))
                params[name] = draw(scalar(values))
        n = draw(st.sampled_from(range(max_n + 1)))  # uniform (integers() favours the ends), shrinks to 0
        assume(core_shapes(o, n, params) is not None)  # e.g. an offset beyond the matrix
        return FuzzCase(op, params, draw(st.sampled_from(list(dtypes))), n, draw(batches(len(o.args), max_batch)),
                        round(10.0 ** (draw(st.integers(0, round(10 * max_log_cond))) / 10), 6),
                        draw(st.sampled_from(GARBAGE)), draw(st.integers(0, 2**32 - 1)))

    return cases


def cases(op: str, dtypes=DTYPES, max_n: int = MAX_N, max_batch: int = MAX_BATCH, max_log_cond: float = MAX_LOG_COND):
    """The hypothesis strategy of :class:`FuzzCase` s of ``op``: orders 0 to ``max_n``, at most
    ``max_batch`` batch entries, ``dtypes``, conditioning targets up to ``10**max_log_cond``."""
    return _strategies()(op, tuple(dtypes), max_n, max_batch, max_log_cond)


# ---- running --------------------------------------------------------------------------------
@dataclass
class Finding:
    """A failing case and what failed: ``(check, ratio, message)`` for each failing check."""

    case: FuzzCase
    failures: list

    def describe(self, backend_name: str) -> str:
        lines = [f"{check}: ratio {ratio:.3g}: {message}" for check, ratio, message in self.failures]
        lines.append(f"case: {self.case.to_json()}")
        lines.append(f"replay: python -m xlinalg_conformance.fuzz --backend {backend_name} --replay '{self.case.to_json()}'")
        return "\n".join(lines)


@dataclass
class OperatorReport:
    """The fuzzing of one operator: cases run (shrinking included), seconds, the minimal
    failing case (``None`` when all passed), and how often each check ran and was skipped."""

    op: str
    cases: int = 0
    seconds: float = 0.0
    finding: Finding | None = None
    ran: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.cases / self.seconds if self.seconds else math.inf


def run_case(ctx: C.Context, case: FuzzCase, checks, report: OperatorReport | None = None) -> list:
    """The failing ``(check, ratio, message)`` of ``checks`` (names in ``checks.SAMPLE_CHECKS``)
    on ``case``; a check raising counts as failing with infinite ratio."""
    sample = case.sample()
    failures = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # non-finite garbage in arithmetic on whole arrays
        for check in checks:
            try:
                outcome = C.SAMPLE_CHECKS[check](ctx, sample)
            except C.Skip as exc:
                if report is not None:
                    report.skipped[check] = str(exc)
                continue
            except C.NotApplicable:
                continue
            except Exception as exc:
                outcome = C.Outcome(math.inf, f"raised {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
            if report is not None:
                report.ran[check] = report.ran.get(check, 0) + 1
            ratio = outcome.ratio if outcome.ratio == outcome.ratio else math.inf
            if ratio > 1:
                failures.append((check, ratio, outcome.message))
    return failures


class _CaseFailed(Exception):
    pass


def fuzz_operator(backend, op: str, *, budget: int, checks=None, reference="numpy", seed=None, dtypes=DTYPES,
                  max_n: int = MAX_N, max_batch: int = MAX_BATCH, max_log_cond: float = MAX_LOG_COND) -> OperatorReport:
    """Fuzz ``op`` on ``backend`` with ``budget`` generated cases (hypothesis ``max_examples``);
    on a failure, hypothesis shrinks it and the report holds the minimal failing case."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as hypothesis_seed

    backend = get_backend(backend).for_fuzzing()
    ctx = C.Context(backend, get_backend(reference) if reference else None)
    checks = [c for c in (checks or C.SAMPLE_CHECKS) if c in C.SAMPLE_CHECKS]
    report = OperatorReport(op)
    state = {}

    @settings(max_examples=budget, deadline=None, database=None, report_multiple_bugs=False, print_blob=False,
              phases=(Phase.generate, Phase.shrink), suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet)
    @given(case=cases(op, dtypes, max_n, max_batch, max_log_cond))
    def conforms(case):
        report.cases += 1
        if report.cases % RELEASE_EVERY == 0:
            backend.release()
        failures = run_case(ctx, case, checks, report)
        if failures:
            state["last"] = Finding(case, failures)  # the final replay is the minimal case
            raise _CaseFailed(case.to_json())

    test = conforms if seed is None else hypothesis_seed(seed)(conforms)
    t0 = time.perf_counter()
    try:
        test()
    except _CaseFailed:
        report.finding = state["last"]
    except Exception as exc:  # hypothesis's own: a failure that did not fail again on replay
        if "last" not in state:
            raise
        report.finding = state["last"]
        report.finding.failures.append(("reproducible", math.inf, f"the failure did not repeat when hypothesis replayed "
                                                                  f"the case ({type(exc).__name__}): the backend is not deterministic"))
    report.seconds = time.perf_counter() - t0
    return report


def replay(backend, case: FuzzCase, *, checks=None, reference="numpy") -> list:
    """Run one case again: ``(check, ratio, message)`` of each failing check."""
    backend = get_backend(backend).for_fuzzing()
    ctx = C.Context(backend, get_backend(reference) if reference else None)
    return run_case(ctx, case, [c for c in (checks or C.SAMPLE_CHECKS) if c in C.SAMPLE_CHECKS])


# ---- command line ---------------------------------------------------------------------------
def main(argv=None) -> int:
    """``python -m xlinalg_conformance.fuzz``: exit status 1 when a case fails, 2 when the
    backend is not available."""
    import xlinalg

    p = argparse.ArgumentParser(prog="python -m xlinalg_conformance.fuzz", description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", default="numpy", help=f"one of {', '.join(BACKENDS)}, or module:attr")
    p.add_argument("--ops", nargs="*", default=None, help="operators (default: all)")
    p.add_argument("--checks", nargs="*", default=None, choices=list(C.SAMPLE_CHECKS), help="checks (default: all per-sample checks)")
    p.add_argument("--budget", type=int, default=100, metavar="N", help="generated cases per operator (default 100)")
    p.add_argument("--dtypes", nargs="*", default=list(DTYPES), choices=DTYPES)
    p.add_argument("--max-n", type=int, default=MAX_N, help=f"largest matrix order (default {MAX_N})")
    p.add_argument("--max-batch", type=int, default=MAX_BATCH, help=f"most batch entries of a call (default {MAX_BATCH})")
    p.add_argument("--max-log-cond", type=float, default=MAX_LOG_COND,
                   help=f"conditioning targets up to 10**this (default {MAX_LOG_COND}; above it fd_grad's tolerance does not hold)")
    p.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: random, printed)")
    p.add_argument("--reference", default="numpy", help="backend the cross check compares with")
    p.add_argument("--replay", default=None, metavar="JSON", help="run one reported case again and print each check")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    args = p.parse_args(argv)
    if args.budget < 1:
        p.error("--budget must be at least 1")

    backend = backend_for_command(p, args.backend)
    if backend is None:
        return 2
    if args.replay is not None:
        case = FuzzCase.from_json(args.replay)
        failures = replay(backend, case, checks=args.checks, reference=args.reference)
        for check, ratio, message in failures:
            print(f"FAIL {check}: ratio {ratio:.3g}: {message}")
        print(f"{case.op}: {len(failures)} check(s) fail on {case.to_json()}")
        return 1 if failures else 0
    ops = args.ops or list(xlinalg.OPERATORS)
    unknown = set(ops) - set(xlinalg.OPERATORS)
    if unknown:
        p.error(f"unknown operator(s): {', '.join(sorted(unknown))}")
    seed = args.seed if args.seed is not None else int(np.random.SeedSequence().entropy % 2**31)
    print(f"fuzz: backend {backend.name}, reference {args.reference}, {args.budget} cases per operator, "
          f"orders 0..{args.max_n}, at most {args.max_batch} batch entries, conditioning up to "
          f"{10 ** args.max_log_cond:.3g}, seed {seed}", flush=True)
    reports = []
    for op in ops:
        r = fuzz_operator(backend, op, budget=args.budget, checks=args.checks, reference=args.reference, seed=seed,
                          dtypes=tuple(args.dtypes), max_n=args.max_n, max_batch=args.max_batch, max_log_cond=args.max_log_cond)
        reports.append(r)
        verdict = "ok" if r.finding is None else "FAIL"
        print(f"{op:<13}{r.cases:>7} cases {r.seconds:8.1f} s {r.rate:8.1f} cases/s  {verdict}", flush=True)
        if r.finding is not None:
            print("    " + r.finding.describe(args.backend).replace("\n", "\n    "), flush=True)
    total, seconds = sum(r.cases for r in reports), sum(r.seconds for r in reports)
    failed = [r.op for r in reports if r.finding is not None]
    skipped = sorted({reason for r in reports for reason in r.skipped.values()})
    for reason in skipped:
        print(f"skipped: {reason}")
    print(f"{total} cases in {seconds:.1f} s ({total / seconds if seconds else math.inf:.1f} cases/s); "
          f"{len(failed)} operator(s) failed{': ' + ', '.join(failed) if failed else ''}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"backend": backend.name, "reference": args.reference, "budget": args.budget, "seed": seed,
                       "operators": [{"op": r.op, "cases": r.cases, "seconds": r.seconds, "checks_run": r.ran,
                                      "skipped": r.skipped,
                                      "failure": None if r.finding is None else {
                                          "case": json.loads(r.finding.case.to_json()),
                                          "checks": [{"check": c, "ratio": "inf" if q == math.inf else q, "message": m}
                                                     for c, q, m in r.finding.failures]}}
                                     for r in reports]}, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
