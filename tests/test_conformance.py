"""The conformance suite on the core-rules backends (NumPy, array-api-strict), and tests of
the suite's own parts: samples, references, error cases, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from xlinalg_conformance.checks import CHECKS, error_cases, rel_err
from xlinalg_conformance.plugin import conformance_tests
from xlinalg_conformance.samples import ORDERS, _base_samples, param_combos, samples

import xlinalg

# every operator × check, one test item each: test_numpy[potrf-fd_grad], ...
test_numpy = conformance_tests("numpy")
test_array_api_strict = conformance_tests("array_api_strict", requires="array_api_strict")


# ---- samples -------------------------------------------------------------------------------
@pytest.mark.parametrize("op", xlinalg.OPERATORS)
def test_samples_cover_every_combination(op):
    spec = xlinalg.core.operators()[op]
    base = _base_samples(op)
    for params in param_combos(op):
        at = [s for s in base if s.params == params]
        assert any(s.n >= 5 for s in at), f"{op} {params} never runs at n >= 5"
        layouts = {s.batch for s in at}
        assert {"()", "(3,)"} <= layouts
        if len(spec.args) >= 2:
            assert "(2,1)x(1,3)" in layouts
    assert {s.n for s in base} == set(ORDERS)
    assert any(s.batch == "(0,)" for s in base)
    assert {s.dtype for s in samples(op)} == {"float32", "float64"}
    for s in samples(op):
        assert all(x.dtype == np.dtype(s.dtype) for x in s.inputs)


@pytest.mark.parametrize("op", ["potrf", "syevd", "trsm", "gelqf", "inverse"])
def test_samples_are_deterministic_and_well_conditioned(op):
    first = [tuple(x.copy() for x in s.inputs) for s in _base_samples(op)]
    _base_samples.cache_clear()
    for xs, s in zip(first, _base_samples(op)):
        assert all(np.array_equal(a, b) for a, b in zip(xs, s.inputs))
    for s in _base_samples(op):
        assert 1.0 <= s.kappa < 50, s.id
        x = s.inputs[0]
        if op == "potrf" and x.size:
            lower = s.params["lower"]
            a = np.tril(x) + np.swapaxes(np.tril(x, -1), -1, -2) if lower else np.triu(x) + np.swapaxes(np.triu(x, 1), -1, -2)
            assert np.linalg.eigvalsh(a).min() >= 0.5
        if op == "gelqf":
            assert x.shape[-2] <= x.shape[-1]


def test_structured_samples_have_garbage_in_the_unread_triangle():
    s = next(s for s in _base_samples("potrf") if s.n == 5 and s.params["lower"])
    a = s.inputs[0]
    assert not np.allclose(a, np.swapaxes(a, -1, -2))  # the suite proves the upper triangle is ignored


# ---- references ----------------------------------------------------------------------------
@pytest.mark.parametrize("op", xlinalg.OPERATORS)
def test_references_are_independent_of_the_rules(op):
    """Each registry reference is NumPy/SciPy code that calls no rule, kernel or xlinalg."""
    import inspect

    spec = xlinalg.core.operators()[op]
    source = inspect.getsource(spec.reference)
    for name in ("kern", "xp", "xlinalg", "apply", spec.forward.__name__, spec.vjp.__name__):
        assert f"{name}." not in source and f"{name}(" not in source, (op, name)


def R(name):
    return xlinalg.core.operators()[name].reference


def test_reference_layouts_match_mxnet_documentation():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert R("extracttrian")(a, offset=0, lower=True)[0].tolist() == [1.0, 3.0, 4.0]
    assert R("extracttrian")(a, offset=0, lower=False)[0].tolist() == [1.0, 2.0, 4.0]
    assert R("extracttrian")(a, offset=1, lower=True)[0].tolist() == [2.0]
    assert R("extracttrian")(a, offset=-1, lower=True)[0].tolist() == [3.0]
    v = np.array([1.0, 2.0, 3.0])
    assert R("maketrian")(v, offset=0, lower=True)[0].tolist() == [[1, 0], [2, 3]]
    assert R("maketrian")(v, offset=0, lower=False)[0].tolist() == [[1, 2], [0, 3]]
    assert R("maketrian")(v, offset=1, lower=True)[0].tolist() == [[0, 1, 2], [0, 0, 3], [0, 0, 0]]
    assert R("maketrian")(v, offset=-1, lower=True)[0].tolist() == [[0, 0, 0], [1, 0, 0], [2, 3, 0]]
    assert R("makediag")(np.array([1.0, 2.0]), offset=1)[0].tolist() == [[0, 1, 0], [0, 0, 2], [0, 0, 0]]


def test_reference_conventions():
    rng = np.random.default_rng(0)
    s = rng.standard_normal((4, 4))
    u, lam = R("syevd")(s + s.T)
    assert np.all(np.diff(lam) > 0)
    rows = np.arange(4)
    assert np.all(u[rows, np.argmax(np.abs(u), axis=1)] > 0)
    q, el = R("gelqf")(rng.standard_normal((3, 5)))
    assert np.all(np.diag(el) >= 0) and np.allclose(np.triu(el, 1), 0)
    sign, logabs = R("slogdet")(np.diag([-2.0, 3.0]))
    assert sign == -1.0 and math.isclose(logabs, math.log(6.0))


def test_rel_err_is_per_batch_entry_and_flags_nan():
    r = np.stack([np.eye(2), 0.1 * np.eye(2), 1e-4 * np.eye(2)])
    y = r.copy()
    y[1, 0, 0] += 0.01  # 10% of entry 1, 1% of the batch maximum
    ratio, idx = rel_err(y, r, 2)
    assert math.isclose(ratio, 0.1) and idx == (1,)
    y[2, 0, 0] += 1e-3  # entries below 1% of the batch maximum are measured against that floor
    ratio, idx = rel_err(y, r, 2)
    assert math.isclose(ratio, 0.1) and idx in ((1,), (2,))
    y[0, 1, 1] = np.nan
    assert rel_err(y, r, 2)[0] == math.inf


# ---- error cases ---------------------------------------------------------------------------
@pytest.mark.parametrize("op", xlinalg.OPERATORS)
def test_error_cases_cover_design(op):
    labels = " | ".join(c.label for c in error_cases(op))
    for needed in ("int32", "bool", "float16", "unknown parameter"):
        assert needed in labels
    spec = xlinalg.core.operators()[op]
    if len(spec.args) >= 2:
        assert "batch (2,) vs (3,)" in labels and "two libraries" in labels
    if any(a.square for a in spec.args):
        assert "non-square" in labels
    expected_linalg = 2 if spec.failure else 0  # batch (2, 3) at (1, 2) and batch (3,) at (1,)
    assert spec.failure is None or spec.breaks is not None, f"{op} declares a failure but no breaks"
    assert sum(c.index is not None for c in error_cases(op)) == expected_linalg
    shape_rule_cases = [c for c in error_cases(op) if c.label.startswith("shape rule")]
    if op in ("gemm", "gemm2", "trsm", "trmm", "potrs", "gelqf", "maketrian", "extractdiag", "extracttrian"):
        assert shape_rule_cases, f"{op}: no bad shape derived from its shape rule"


# ---- command line --------------------------------------------------------------------------
def test_cli_table_and_json(tmp_path, capsys):
    from xlinalg_conformance.__main__ import main

    out = tmp_path / "r.json"
    assert main(["--backend", "numpy", "--ops", "det", "makediag", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "det" in text and "fd_grad" in text and "skip" in text
    data = json.loads(out.read_text())
    assert data["passed"] and data["backend"] == "numpy"
    assert {(r["op"], r["check"]) for r in data["results"]} == {(o, c) for o in ("det", "makediag") for c in CHECKS}
    cross = next(r for r in data["results"] if r["op"] == "det" and r["check"] == "cross")
    assert cross["status"] == "skip" and "reference" in cross["reason"]
    assert set(data["capabilities"]) == {"vjp", "jvp", "errors", "partial_vjp"}  # what the NumPy backend declares
    assert "xlinalg.vjp" in data["capabilities"]["vjp"]
