"""The property-based fuzzer (``xlinalg_conformance.fuzz``): what it generates, that correct
backends pass a small budget, and that it finds, shrinks and reproduces planted bugs."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from xlinalg_conformance import fuzz
from xlinalg_conformance.backends import NUMPY
from xlinalg_conformance.broken import BROKEN, DropsLastBatchEntry, WrappedBackend


def _generated(op, count=300, **kwargs):
    """``count`` cases of ``op`` as the fuzzer draws them, from a fixed seed (derandomized): the
    coverage asserted below is a property of these draws, not of a lucky run."""
    drawn = []

    @settings(max_examples=count, database=None, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(fuzz.cases(op, **kwargs))
    def collect(case):
        drawn.append(case)

    collect()
    return drawn


def _batch_size(case) -> int:
    return int(np.prod(np.broadcast_shapes(*case.batches)))


def test_cases_cover_orders_layouts_dtypes_conditioning_and_garbage():
    drawn = _generated("trsm")
    assert {c.n for c in drawn} == set(range(fuzz.MAX_N + 1))
    assert {c.dtype for c in drawn} == {"float32", "float64"}
    assert {c.garbage for c in drawn} == set(fuzz.GARBAGE)
    assert any(_batch_size(c) == 0 for c in drawn)  # empty batches
    assert any(c.batches[0] != c.batches[1] and _batch_size(c) > 1 for c in drawn)  # broadcasting
    assert any(c.conditioning > 2 for c in drawn) and any(c.conditioning == 1 for c in drawn)
    assert any(c.params["alpha"] not in (1.0, -1.5) for c in drawn)  # scalars beyond the grid
    assert {(c.params["lower"], c.params["rightside"], c.params["transpose"]) for c in drawn} == {
        (a, b, t) for a in (True, False) for b in (True, False) for t in (True, False)}
    assert all(_batch_size(c) <= fuzz.MAX_BATCH for c in drawn)


def test_a_case_is_reproducible_from_its_json():
    case = _generated("potrs", 20)[-1]
    again = fuzz.FuzzCase.from_json(case.to_json())
    assert again == case and again.params == case.params
    for x, y in zip(fuzz.draw_inputs(case)[0], fuzz.draw_inputs(again)[0]):
        assert np.array_equal(x, y, equal_nan=True)


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("garbage", fuzz.GARBAGE)
def test_garbage_fills_exactly_the_unread_triangle(lower, garbage):
    case = fuzz.FuzzCase("potrf", {"lower": lower}, "float64", 5, ((2,),), 1.0, garbage, 3)
    (a,), _ = fuzz.draw_inputs(case)
    read = np.tril(np.ones((5, 5), bool)) if lower else np.triu(np.ones((5, 5), bool))
    assert np.all(np.isfinite(a[..., read]))
    assert np.linalg.eigvalsh(np.where(read, a, np.swapaxes(a, -1, -2)), UPLO="L" if lower else "U").min() > 0
    unread = a[..., ~read]
    if garbage in ("nan", "inf"):
        assert np.all(np.isnan(unread) if garbage == "nan" else np.isinf(unread))
    else:
        assert np.all(np.isfinite(unread)) and (np.abs(unread).max() > 1e20) == (garbage == "huge")


def test_conditioning_worsens_the_condition_bound():
    def kappa(c):
        return fuzz.draw_inputs(fuzz.FuzzCase("inverse", {}, "float64", 6, ((),), c, "noise", 1))[1]

    assert kappa(1.0) <= 2.0 + 1e-9 and kappa(3.0) > 2.0


def test_numpy_passes_a_small_budget():
    ran = set()
    for op in ("potrf", "trsm", "gemm", "syevd", "maketrian"):
        r = fuzz.fuzz_operator(NUMPY, op, budget=15, seed=1)
        assert r.finding is None, r.finding.describe("numpy")
        assert r.cases == 15 and {"forward", "no_mutation", "dtype"} <= set(r.ran)
        ran |= set(r.ran)
    assert {"fd_grad", "adjoint", "structure", "batching"} <= ran


def test_torch_passes_a_small_budget():
    pytest.importorskip("torch")
    ran = set()
    for op in ("potrf", "gemm", "syevd"):
        r = fuzz.fuzz_operator("torch", op, budget=6, seed=2)
        assert r.finding is None, r.finding.describe("torch")
        ran |= set(r.ran)
    assert {"accumulate", "cross", "second_order"} <= ran


def test_jax_passes_a_small_budget():
    pytest.importorskip("jax")
    r = fuzz.fuzz_operator("jax", "potrf", budget=4, seed=3, max_n=3, max_batch=2)
    assert r.finding is None, r.finding.describe("jax")
    assert "cross" in r.ran


def test_mxnet_passes_a_small_budget():
    from xlinalg_conformance.backends import get_backend

    backend = get_backend("mxnet")
    why = backend.available()
    if why:
        pytest.skip(why)
    for op in ("potrf", "gemm"):
        r = fuzz.fuzz_operator(backend, op, budget=5, seed=6)
        assert r.finding is None, r.finding.describe("mxnet")
        assert "accumulate" in r.ran


class _CountsReleases(WrappedBackend):
    released = 0

    def release(self):
        type(self).released += 1


def test_the_fuzzer_releases_the_backend_every_so_many_cases(monkeypatch):
    monkeypatch.setattr(fuzz, "RELEASE_EVERY", 4)
    r = fuzz.fuzz_operator(_CountsReleases(NUMPY, "numpy-counted"), "det", budget=9, seed=1)
    assert r.cases == 9 and _CountsReleases.released == 2


def test_jax_fuzzing_compiles_the_drawn_combination_only_and_releases_its_programs():
    """The fuzzing variant bundles one parameter combination per input signature (free scalars
    included), and ``release`` empties the compiled programs' caches, not only the suite's."""
    pytest.importorskip("jax")
    from xlinalg_conformance.backends import get_backend
    from xlinalg_conformance.backends import jax as jax_backend

    plain = get_backend("jax")
    backend = plain.for_fuzzing()
    assert plain.grid and not backend.grid
    backend.release()
    a, b = backend.asarray(np.tril(np.ones((3, 3))) + 2 * np.eye(3)), backend.asarray(np.ones((3, 2)))
    params = {"lower": True, "transpose": False, "rightside": False, "alpha": 0.7}  # alpha off the grid
    backend.vjp("trsm", [a, b], params, [backend.asarray(np.ones((3, 2)))])
    (bundle,) = jax_backend._BUNDLES.values()
    (program, _, _), = bundle.slots.values()
    assert program._cache_size() == 1
    backend.release()
    assert not jax_backend._BUNDLES and program._cache_size() == 0


def test_a_planted_batching_bug_is_found_and_shrunk():
    """A forward that drops the last batch entry: found, and shrunk to a call with exactly two
    batch entries (one entry hides the bug) and order 0, where det's 0 × 0 entries are 1."""
    backend = DropsLastBatchEntry(NUMPY, "broken-drops-last-batch-entry")
    r = fuzz.fuzz_operator(backend, "det", budget=100, seed=4)
    assert r.finding is not None
    case = r.finding.case
    assert _batch_size(case) == 2 and case.n == 0, case
    assert "forward" in {check for check, _, _ in r.finding.failures}
    assert fuzz.replay(backend, case) and not fuzz.replay(NUMPY, case)


def test_a_planted_parameter_bug_is_found_where_it_shows():
    """trsm's VJP ignoring alpha: the minimal case has alpha ≠ 1 and fails the derivative checks."""
    backend = BROKEN["trsm_vjp_ignores_alpha"][0]()
    r = fuzz.fuzz_operator(backend, "trsm", budget=100, seed=5)
    assert r.finding is not None
    assert r.finding.case.params["alpha"] != 1.0
    assert {check for check, _, _ in r.finding.failures} & {"fd_grad", "adjoint"}


class _WrongEverySeventhCall(WrappedBackend):
    """A nondeterministic forward: every seventh call scales its outputs."""

    calls = 0

    def call(self, op, arrays, params):
        type(self).calls += 1
        outs = self.base.call(op, arrays, params)
        return tuple(1.5 * y for y in outs) if self.calls % 7 == 0 else outs


def test_a_failure_that_does_not_repeat_is_reported_as_nondeterminism():
    r = fuzz.fuzz_operator(_WrongEverySeventhCall(NUMPY, "numpy-flaky"), "det", budget=50, seed=1)
    assert r.finding is not None
    assert any(check == "reproducible" and "not deterministic" in message for check, _, message in r.finding.failures)


def test_cli_reports_a_reproducible_failure(capsys):
    assert fuzz.main(["--backend", "numpy", "--ops", "det", "--budget", "5", "--seed", "1"]) == 0
    assert "cases/s" in capsys.readouterr().out
    broken = "xlinalg_conformance.broken:DROPS_LAST_BATCH_ENTRY"
    assert fuzz.main(["--backend", broken, "--ops", "det", "--budget", "60", "--seed", "4"]) == 1
    out = capsys.readouterr().out
    case = re.search(r"case: (\{.*\})", out).group(1)
    assert json.loads(case)["op"] == "det" and "replay: python -m xlinalg_conformance.fuzz" in out
    assert fuzz.main(["--backend", broken, "--replay", case]) == 1
    assert fuzz.main(["--backend", "numpy", "--replay", case]) == 0


#: cases the fuzzer found that failed correct backends, fixed in the checks (docs/fuzzing.md):
#: name -> (case, the check that failed[, the backend that shows it: NumPy where none is named])
FOUND = {
    # an eigenvector row whose two largest entries tie in magnitude with opposite signs: the
    # sign rule flips it within a finite-difference step (fd_grad aligns the rows' signs)
    "syevd sign-rule tie": ('{"batches": [[]], "conditioning": 1.0, "dtype": "float64", "garbage": "noise", "n": 6, '
                            '"op": "syevd", "params": {}, "seed": 4055101}', "fd_grad"),
    # the same tie crossed by second_order's difference of VJPs (the cotangent of a row flipped
    # with the row gives the branch's VJP)
    "syevd sign-rule tie, second order": ('{"batches": [[2]], "conditioning": 1.995262, "dtype": "float64", "garbage": "noise", '
                                          '"n": 6, "op": "syevd", "params": {}, "seed": 248}', "second_order", "torch"),
    # a potrs factor of 0.43 (conditioning 3.16): second_order's step, floored at 1, was
    # relatively 2.3 times larger and its truncation error 30 times (the step is relative now)
    "potrs small factor, second order": ('{"batches": [[], []], "conditioning": 3.162278, "dtype": "float64", "garbage": "nan", '
                                         '"n": 1, "op": "potrs", "params": {"lower": true}, "seed": 704763}', "second_order", "torch"),
    # the same for second_order's step in a batch of factors of different scales: relative to
    # the whole batch it was larger in the smaller entries (it is relative per entry now)
    "potrs batch of mixed scales, second order": ('{"batches": [[2, 2], [2]], "conditioning": 2.511886, "dtype": "float64", '
                                                  '"garbage": "noise", "n": 1, "op": "potrs", "params": {"lower": true}, '
                                                  '"seed": 2737}', "second_order", "torch"),
    # a batch whose entries differ in scale: one step for the whole batch was relatively larger
    # in the smaller entries (fd_grad scales the direction per entry)
    "potri batch of mixed scales": ('{"batches": [[1, 2, 3]], "conditioning": 1.584893, "dtype": "float64", '
                                    '"garbage": "noise", "n": 1, "op": "potri", "params": {"lower": true}, "seed": 1}', "fd_grad"),
    # a gradient summed over a broadcast batch whose terms nearly cancel: float32 rounding is
    # relative to the sum of the terms' magnitudes (batching compares on that scale)
    "potrs broadcast gradient that cancels": ('{"batches": [[], [1, 3]], "conditioning": 1.0, "dtype": "float32", '
                                              '"garbage": "nan", "n": 1, "op": "potrs", "params": {"lower": true}, "seed": 0}',
                                              "batching"),
}


@pytest.mark.parametrize("name", list(FOUND))
def test_cases_found_by_fuzzing_pass(name):
    case, check, *named = FOUND[name]
    backend = NUMPY
    if named:
        from xlinalg_conformance.backends import get_backend

        pytest.importorskip(named[0])
        backend = get_backend(named[0])
    assert fuzz.replay(backend, fuzz.FuzzCase.from_json(case), checks=[check]) == []
