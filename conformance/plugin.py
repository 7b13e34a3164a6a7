"""pytest integration: every operator × check as its own test item.

Two ways in:

* command line — ``pytest -p xlinalg_conformance.plugin --conformance-backend=torch`` adds the items
  ``conformance[torch-potrf-fd_grad]``, ... to whatever else is collected (options
  ``--conformance-ops``, ``--conformance-checks``, ``--conformance-reference``; the backend
  option may be repeated);
* from a test module — ``test_torch = conformance_tests("torch", requires="torch")`` makes a
  parametrized test function with ids ``potrf-fd_grad``, ...

A check the backend cannot run (a missing capability) is reported as a skip with the reason;
a failure shows the worst sample and what it showed.
"""

from __future__ import annotations

import pytest

from .checks import CHECKS, applicable


def _operators():
    import xlinalg

    return tuple(xlinalg.OPERATORS)


def _load_backend(name):
    """The backend, or ``pytest.skip`` when its framework is not installed."""
    from .backends import BACKENDS, get_backend

    try:
        backend = get_backend(name)
    except ModuleNotFoundError as exc:
        module = BACKENDS.get(name, name).split(":", 1)[0] if isinstance(name, str) else ""
        if exc.name and exc.name != module and not exc.name.startswith(("conformance", "xlinalg")):
            pytest.skip(f"backend {name}: {exc.name} is not installed")
        raise
    why = backend.available()
    if why:
        pytest.skip(f"backend {backend.name} is not available: {why}")
    return backend


def assert_conformance(backend, op: str, check: str, *, reference="numpy") -> None:
    """Run one operator × check; fail with the worst sample's message, skip with the reason
    when the backend lacks a capability, declares the operator unsupported or no sample
    exercises the check, and xfail a cell listed in the backend's known-failures file."""
    from . import known_failures as kf
    from .declarations import known_failures_path
    from .runner import run_one

    backend = _load_backend(backend)
    r = run_one(backend, op, check, reference=reference)
    listed = known_failures_path(backend)
    if listed is not None:
        kf.apply([r], kf.load(listed))
    if r.status == "xfail":
        pytest.xfail(f"known failure: {r.reason}")
    if r.status in ("skip", "declared"):
        pytest.skip(r.reason)
    if r.status == "n/a":
        pytest.skip(f"no sample of {op} exercises {check}")
    if r.status == "fail":
        where = f"\nworst sample: {r.sample}" if r.sample else ""
        pytest.fail(f"{backend.name}: {op} × {check}: {r.failed}/{r.samples} samples fail, worst "
                    f"error/tolerance {r.ratio:.3g}{where}\n{r.message}", pytrace=False)


def conformance_tests(backend, *, ops=None, checks=None, reference="numpy", requires=None):
    """A test function parametrized over ``ops`` × ``checks`` (default: all) for ``backend``.

    ``requires``: a module to ``pytest.importorskip`` first (the framework). Assign the result
    to a ``test_*`` name in a test module.
    """
    pairs = [(o, c) for o in (ops or _operators()) for c in (checks or CHECKS) if applicable(o, c)]

    @pytest.mark.parametrize("op,check", pairs, ids=[f"{o}-{c}" for o, c in pairs])
    def test_conformance(op, check):
        if requires:
            module = pytest.importorskip(requires)
            if getattr(module, "__file__", None) is None:  # only a namespace package (a folder)
                pytest.skip(f"{requires} is not installed")
        assert_conformance(backend, op, check, reference=reference)

    return test_conformance


# ---- command-line plugin ---------------------------------------------------------------------
def pytest_addoption(parser):
    group = parser.getgroup("conformance", "xlinalg conformance suite")
    group.addoption("--conformance-backend", action="append", default=[], metavar="NAME",
                    help="run the conformance suite on this backend (name or module:attr); repeatable")
    group.addoption("--conformance-ops", nargs="+", default=None, metavar="OP", help="operators (default: all)")
    group.addoption("--conformance-checks", nargs="+", default=None, metavar="CHECK", help="checks (default: all)")
    group.addoption("--conformance-reference", default="numpy", metavar="NAME", help="backend the cross check compares with")


class ConformanceItem(pytest.Item):
    """One backend × operator × check."""

    def __init__(self, *, backend, op, check, reference, **kwargs):
        super().__init__(**kwargs)
        self.backend, self.op, self.check, self.reference = backend, op, check, reference

    def runtest(self):
        assert_conformance(self.backend, self.op, self.check, reference=self.reference)

    def repr_failure(self, excinfo):
        return str(excinfo.value)

    def reportinfo(self):
        return self.path, None, f"conformance[{self.backend}-{self.op}-{self.check}]"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    backends = config.getoption("conformance_backend")
    if not backends:
        return
    ops = config.getoption("conformance_ops") or _operators()
    checks = config.getoption("conformance_checks") or CHECKS
    reference = config.getoption("conformance_reference")
    for b in backends:
        for op in ops:
            for check in checks:
                if not applicable(op, check):
                    continue
                items.append(ConformanceItem.from_parent(
                    session, name=f"conformance[{b}-{op}-{check}]", backend=b, op=op, check=check, reference=reference))
