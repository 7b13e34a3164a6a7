"""Run checks over operators and samples, aggregate, and print the op × check table."""

from __future__ import annotations

import json
import math
import time
import traceback
from dataclasses import asdict, dataclass, field
from os import PathLike

from . import checks as C
from . import declarations, isolation
from . import known_failures as kf
from .backends import get_backend
from .samples import DTYPES, samples


@dataclass
class Result:
    """One operator × check: ``status`` is ``pass``, ``fail``, ``skip`` (the backend lacks a
    capability; ``reason`` says which), ``declared`` (skipped by a declaration: an unsupported
    operator, every sample excluded by a restriction), ``n/a`` (no sample exercises the
    check), or for a cell in the known-failures file ``xfail`` (fails as listed) or ``xpass``
    (passes although listed)."""

    op: str
    check: str
    status: str
    ratio: float | None = None  # worst error/tolerance over the samples
    message: str = ""  # what the worst sample showed
    sample: str | None = None  # its id
    samples: int = 0  # samples checked
    failed: int = 0  # samples with ratio > 1
    reason: str = ""  # why skipped; partial skips of error cases
    seconds: float = 0.0
    declared: int = 0  # samples skipped by the backend's sample restrictions
    declared_reason: str = ""  # the restriction that skipped them
    crashed: bool = False  # the process running the check died (isolation)
    #: every failing sample: ``{"sample": id, "ratio": r, "message": what it showed}``
    failures: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Not an unexpected failure."""
        return self.status != "fail"


def operators() -> tuple:
    import xlinalg

    return tuple(xlinalg.OPERATORS)


def run_one(backend, op: str, check: str, *, reference=None, dtypes=DTYPES) -> Result:
    """Run ``check`` on every sample of ``op`` (or once per operator for ``errors`` and
    ``degenerate``)."""
    backend = get_backend(backend)
    ref_backend = get_backend(reference) if reference is not None else None
    ctx = C.Context(backend, ref_backend)
    t0 = time.perf_counter()
    why = declarations.unsupported(backend, op)
    if why:
        return Result(op, check, "declared", reason=why)
    if check in C.OPERATOR_CHECKS:
        res = Result(op, check, "pass")
        try:
            outcome, skipped = C.OPERATOR_CHECKS[check](ctx, op)
        except C.Skip as exc:
            return Result(op, check, "skip", reason=str(exc), seconds=time.perf_counter() - t0)
        except declarations.Declared as exc:
            return Result(op, check, "declared", reason=str(exc), seconds=time.perf_counter() - t0)
        except C.NotApplicable:
            return Result(op, check, "n/a", seconds=time.perf_counter() - t0)
        except Exception as exc:
            outcome, skipped = C.Outcome(math.inf, _describe(exc)), []
        res.ratio, res.samples, res.message = outcome.ratio, 1, one_line(outcome.message)
        res.reason = "; ".join(skipped)
        if outcome.ratio > 1 or outcome.ratio != outcome.ratio:
            res.status, res.failed = "fail", 1
            res.failures = [{"sample": None, "ratio": _finite_or_inf(outcome.ratio), "message": res.message}]
        res.seconds = time.perf_counter() - t0
        return res
    fn = C.SAMPLE_CHECKS[check]
    worst, worst_msg, worst_id = -1.0, "", None
    n, failed, skip_reason, declared, declared_reason = 0, 0, None, 0, ""
    failures = []
    for s in samples(op, dtypes):
        try:
            excluded = declarations.restriction(backend, s)
            if excluded:
                raise declarations.Declared(excluded)
            out = fn(ctx, s)
        except C.Skip as exc:
            skip_reason = str(exc)
            break
        except declarations.Declared as exc:
            declared, declared_reason = declared + 1, str(exc)
            continue
        except C.NotApplicable:
            continue
        except Exception as exc:  # the backend raised or returned something malformed
            out = C.Outcome(math.inf, _describe(exc))
        n += 1
        ratio = _finite_or_inf(out.ratio)
        if ratio > 1:
            failed += 1
            failures.append({"sample": s.id, "ratio": ratio, "message": one_line(out.message)})
        if ratio > worst:
            worst, worst_msg, worst_id = ratio, out.message, s.id
    res = Result(op, check, "pass", samples=n, failed=failed, seconds=time.perf_counter() - t0, declared=declared,
                 failures=sorted(failures, key=lambda f: -f["ratio"]))
    res.declared_reason = declared_reason
    if skip_reason is not None:
        res.status, res.reason = "skip", skip_reason
    elif n == 0:
        res.status = "declared" if declared and C.applicable(op, check) else "n/a"
        res.reason = declared_reason if res.status == "declared" else ""
    else:
        res.ratio, res.message, res.sample = worst, one_line(worst_msg), worst_id
        if failed:
            res.status = "fail"
    return res


def _finite_or_inf(ratio: float) -> float:
    return ratio if ratio == ratio else math.inf  # NaN counts as the worst


#: the longest message a report line carries (a backend's error text can run to kilobytes)
MESSAGE_CHARS = 400


def one_line(text: str) -> str:
    """``text`` on one line (whitespace collapsed), cut to :data:`MESSAGE_CHARS` in the middle."""
    text = " ".join(str(text).split())
    if len(text) > MESSAGE_CHARS:
        keep = MESSAGE_CHARS // 2 - 3
        text = text[:keep] + " ... " + text[-keep:]
    return text


def _describe(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" ({tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno})" if tb else ""
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:200] + " ... " + text[-95:]
    return f"raised {type(exc).__name__}: {text}{where}"


def run(backend, ops=None, checks=None, *, reference="numpy", dtypes=DTYPES, progress=None, isolate=None,
        known_failures=None) -> list[Result]:
    """Every operator × check for ``backend``; ``progress(result)`` is called after each.

    Parameters
    ----------
    isolate : bool, optional
        Run each operator in its own process (:mod:`xlinalg_conformance.isolation`); default:
        what the backend declares (``isolate``).
    known_failures : path or dict, optional
        A known-failures file (or its parsed entries, :func:`known_failures.load`) whose cells
        become ``xfail``/``xpass``; default: the file the backend declares, if any.
    """
    name = backend
    backend = get_backend(backend)
    why = backend.available()
    if why:
        raise RuntimeError(f"backend {backend.name} is not available: {why}")
    if isolate is None:
        isolate = declarations.isolated(backend)
    spec = isolation.backend_spec(name if isinstance(name, str) else backend) if isolate else None
    if known_failures is None:
        known_failures = declarations.known_failures_path(backend)
    known = kf.load(known_failures) if isinstance(known_failures, (str, PathLike)) else dict(known_failures or {})
    results = []
    for op in ops or operators():
        if isolate and not declarations.unsupported(backend, op):
            cells = isolation.run_operator(spec, op, checks or C.CHECKS, reference=reference, dtypes=dtypes)
        else:
            cells = (run_one(backend, op, check, reference=reference, dtypes=dtypes) for check in checks or C.CHECKS)
        for r in cells:
            kf.apply([r], known)
            results.append(r)
            if progress:
                progress(r)
    return results


def _cell(r: Result) -> str:
    if r.status in ("skip", "xfail"):
        return r.status
    if r.status == "declared":
        return "decl"
    if r.status == "n/a":
        return "-"
    if r.crashed:
        return "CRASH"
    text = "inf" if r.ratio == math.inf else (f"{r.ratio:.2g}" if r.ratio >= 1e-3 else ("0" if r.ratio == 0 else "<1e-3"))
    return {"fail": f"FAIL {text}", "xpass": f"XPASS {text}"}.get(r.status, text)


def table(results: list[Result]) -> str:
    """Operators as rows, checks as columns, worst ratios in the cells."""
    ops = list(dict.fromkeys(r.op for r in results))
    checks = list(dict.fromkeys(r.check for r in results))
    cells = {(r.op, r.check): _cell(r) for r in results}
    width = {c: max(len(c), *(len(cells.get((o, c), "")) for o in ops)) for c in checks}
    w0 = max(len("operator"), *(len(o) for o in ops))
    lines = ["operator".ljust(w0) + "  " + "  ".join(c.rjust(width[c]) for c in checks)]
    lines.append("-" * len(lines[0]))
    for o in ops:
        lines.append(o.ljust(w0) + "  " + "  ".join(cells.get((o, c), "").rjust(width[c]) for c in checks))
    return "\n".join(lines)


def summary(results: list[Result]) -> str:
    """Failures with their worst sample, and skip reasons."""
    out = []
    fails = [r for r in results if r.status == "fail"]
    for r in fails:
        where = f" [{r.sample}]" if r.sample else ""
        out.append(f"FAIL {r.op} × {r.check} ({r.failed}/{r.samples} samples){where}: {r.message}")
    for r in results:
        if r.status == "xpass":
            out.append(f"XPASS {r.op} × {r.check}: passes, but is listed as a known failure ({r.reason}); remove the entry")
    for r in results:
        if r.status == "xfail":
            out.append(f"xfail {r.op} × {r.check}: {r.reason}")
    reasons = {}
    for r in results:
        if r.status in ("skip", "declared"):
            reasons.setdefault((r.status, r.reason), []).append(f"{r.op}×{r.check}")
    for (status, reason), where in reasons.items():
        label = "skip" if status == "skip" else "declared"
        out.append(f"{label} ({reason}): {len(where)} cells, e.g. {', '.join(where[:3])}")
    partly = {}
    for r in results:
        if r.declared and r.status not in ("declared", "skip"):
            partly.setdefault(r.declared_reason, []).append(f"{r.op}×{r.check}")
    for reason, where in partly.items():
        out.append(f"declared samples skipped ({reason}): in {len(where)} cells, e.g. {', '.join(where[:3])}")
    partial = {r.reason for r in results if r.check == "errors" and r.reason and r.status in ("pass", "fail")}
    for reason in sorted(partial)[:5]:
        out.append(f"errors: skipped cases: {reason}")
    return "\n".join(out)


def to_json(results: list[Result], backend_name: str, **extra) -> str:
    def clean(d):  # JSON has no infinity
        for item in (d, *d.get("failures", ())):
            if isinstance(item.get("ratio"), float) and not math.isfinite(item["ratio"]):
                item["ratio"] = "inf"
        return d

    return json.dumps({"backend": backend_name, **extra, "results": [clean(asdict(r)) for r in results],
                       "passed": all(r.ok for r in results)}, indent=1)  # (known failures: xfail, not fail)


__all__ = ["Result", "one_line", "run", "run_one", "table", "summary", "to_json"]
