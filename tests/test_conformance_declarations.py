"""What a backend declares changes what the conformance suite expects of it, and only that:
each test runs a backend that differs from xlinalg's conventions in one way, without the
declaration (the suite must fail it) and with it (the suite must accept it, reporting the
declaration)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from xlinalg_conformance import known_failures as kf
from xlinalg_conformance.backends import NUMPY, NumpyBackend
from xlinalg_conformance.broken import WrappedBackend
from xlinalg_conformance.declarations import ErrorContract
from xlinalg_conformance.runner import run, summary, table

import xlinalg


def cells(results):
    return {(r.op, r.check): r for r in results}


# ---- unsupported operators ---------------------------------------------------------------------
class WithoutPotrf(WrappedBackend):
    """A library without potrf: calling it raises, as a missing function would."""

    def call(self, op, arrays, params):
        if op == "potrf":
            raise AttributeError("no potrf here")
        return self.base.call(op, arrays, params)

    def vjp(self, op, arrays, params, cotangents):
        return self.call(op, arrays, params) and self.base.vjp(op, arrays, params, cotangents)

    def jvp(self, op, arrays, tangents, params):
        return self.call(op, arrays, params) and self.base.jvp(op, arrays, tangents, params)


def test_unsupported_operator_is_a_declared_skip_in_every_check():
    backend = WithoutPotrf(NUMPY, "no-potrf")
    assert {r.status for r in run(backend, ["potrf"], ["forward", "errors"])} == {"fail"}
    backend.unsupported = {"potrf": "no Cholesky factorization"}
    results = run(backend, ["potrf", "gemm"], ["forward", "fd_grad", "structure", "errors", "nan_policy"])
    for (op, check), r in cells(results).items():
        if op == "potrf":
            assert r.status == "declared" and "no Cholesky factorization" in r.reason, (check, r)
        else:
            assert r.status in ("pass", "n/a"), (check, r)
    assert "decl" in table(results) and "FAIL" not in table(results)


# ---- the error contract -------------------------------------------------------------------------
class RuntimeErrors(WrappedBackend):
    """A library that raises ``RuntimeError("linalg: (Batch element k): ...")`` for everything,
    with the flat batch position of a failure in the message (as PyTorch)."""

    def call(self, op, arrays, params):
        try:
            return self.base.call(op, arrays, params)
        except xlinalg.LinAlgError as exc:
            batch = next((x.shape[:-2] for x in arrays if np.ndim(x) >= 3), ())
            flat = int(np.ravel_multi_index(exc.index, batch)) if batch else 0
            raise RuntimeError(f"linalg: (Batch element {flat}): failed") from None
        except (ValueError, TypeError) as exc:
            raise RuntimeError(f"native: {type(exc).__name__}") from None


def _flat_index(exc, batch):
    k = int(re.search(r"Batch element (\d+)", str(exc)).group(1))
    return tuple(int(i) for i in np.unravel_index(k, batch))


def test_error_contract_accepts_the_declared_exception_types_and_index():
    backend = RuntimeErrors(NUMPY, "runtime-errors")
    r = run(backend, ["potrf"], ["errors", "nan_policy"])
    assert [x.status for x in r] == ["fail", "fail"] and "expected ValueError" in r[0].message
    backend.error_contract = ErrorContract(value_error=(RuntimeError,), type_error=(RuntimeError,), linalg_error=(RuntimeError,), index=_flat_index, messages=False)
    assert [x.status for x in run(backend, ["potrf"], ["errors", "nan_policy"])] == ["pass", "pass"]


def test_error_contract_still_checks_the_reported_index():
    def first_entry(exc, batch):  # a wrong reading: always the first entry
        return (0,) * len(batch)

    backend = RuntimeErrors(NUMPY, "runtime-errors")
    backend.error_contract = ErrorContract(value_error=(RuntimeError,), type_error=(RuntimeError,), linalg_error=(RuntimeError,), index=first_entry, messages=False)
    (r,) = run(backend, ["potrf"], ["errors"])
    assert r.status == "fail" and "reports batch index (0, 0), expected (1, 2)" in r.message


class NanFailures(WrappedBackend):
    """Numerical failures as NaN in the failing batch entries (invalid input still raises)."""

    def call(self, op, arrays, params):
        try:
            return self.base.call(op, arrays, params)
        except xlinalg.LinAlgError as exc:
            from xlinalg.core import apply, operators

            _, shapes, dtype = apply.check_signature(operators()[op], [np.shape(x) for x in arrays], [str(np.asarray(x).dtype) for x in arrays], params)
            outs = [np.ones(shape, dtype) for shape in shapes]
            for y in outs:
                y[exc.index] = np.nan  # the first failing entry: each error case has one
            return tuple(outs)


def test_error_contract_failures_as_nan_per_operator():
    backend = NanFailures(NUMPY, "nan-failures")
    assert {r.status for r in run(backend, ["potrf"], ["errors"])} == {"fail"}
    backend.error_contract = ErrorContract(failures_by_op={"potrf": "nan"})
    assert {r.status for r in run(backend, ["potrf"], ["errors"])} == {"pass"}


class DeferredErrors(WrappedBackend):
    """An asynchronous library: every error is raised by ``synchronize()``."""

    pending = None

    def call(self, op, arrays, params):
        try:
            return self.base.call(op, arrays, params)
        except Exception as exc:
            self.pending = exc
            return tuple(np.zeros(1) for _ in xlinalg.core.operators()[op].outputs)

    def synchronize(self):
        exc, self.pending = self.pending, None
        if exc is not None:
            raise exc


def test_error_contract_timing():
    backend = DeferredErrors(NUMPY, "deferred")
    (r,) = run(backend, ["trsm"], ["errors"])
    assert r.status == "fail" and "raised only at synchronization, expected at the call" in r.message
    backend.error_contract = ErrorContract(timing="async")
    assert run(backend, ["trsm"], ["errors"])[0].status == "pass"


def test_error_contract_rejects_unknown_modes():
    with pytest.raises(ValueError, match="failures for potrf is 'later'"):
        ErrorContract(failures_by_op={"potrf": "later"})
    with pytest.raises(ValueError, match="timing is 'soon'"):
        ErrorContract(timing="soon")


# ---- gradients of symmetric arguments ----------------------------------------------------------
class OtherSymmetricGradients(WrappedBackend):
    """potrf's and syevd's gradient as the triangle read (off-diagonal doubled, zero
    elsewhere), or with an antisymmetric part added (``unsymmetrized``)."""

    def __init__(self, base, name, kind):
        super().__init__(base, name)
        self.kind = kind

    def vjp(self, op, arrays, params, cotangents):
        grads = list(self.base.vjp(op, arrays, params, cotangents))
        if op in ("potrf", "syevd"):
            s = grads[0]
            if self.kind == "triangle":
                lower = params.get("lower", True)
                grads[0] = 2 * (np.tril(s, -1) if lower else np.triu(s, 1)) + s * np.eye(s.shape[-1])
            else:
                grads[0] = s + (np.triu(s, 1) - np.tril(s, -1))
        return tuple(grads)


@pytest.mark.parametrize("kind", ["triangle", "unsymmetrized"])
def test_symmetric_gradient_representation_is_converted(kind):
    backend = OtherSymmetricGradients(NUMPY, f"gradients-{kind}", kind)
    checks = ["fd_grad", "adjoint", "structure", "batching", "cross"]
    failing = {r.check for r in run(backend, ["potrf"], checks) if r.status == "fail"}
    assert {"structure", "cross"} <= failing
    backend.symmetric_gradient = kind
    results = cells(run(backend, ["potrf", "syevd"], checks))
    assert not [k for k, r in results.items() if r.status == "fail"], [(k, r.message) for k, r in results.items() if r.status == "fail"]
    assert results["potrf", "structure"].status == "pass"  # the zero triangle or the JVP's part still checked


def test_declared_triangle_gradient_must_be_masked():
    backend = OtherSymmetricGradients(NUMPY, "gradients-unsymmetrized", "unsymmetrized")
    backend.symmetric_gradient = "triangle"  # a wrong declaration
    (r,) = run(backend, ["potrf"], ["structure"])
    assert r.status == "fail" and "declared: the triangle read" in r.message


# ---- sample restrictions -----------------------------------------------------------------------
class NoBroadcastNoEmpty(WrappedBackend):
    """Rejects batches that broadcast and zero-size inputs."""

    def call(self, op, arrays, params):
        spec = xlinalg.core.operators()[op]
        if len({np.shape(x)[: np.ndim(x) - a.ndim] for x, a in zip(arrays, spec.args)}) > 1:
            raise ValueError("batches must be equal")
        if any(np.size(x) == 0 for x in arrays):
            raise ValueError("empty input")
        return self.base.call(op, arrays, params)


def test_sample_restrictions_skip_and_count_the_samples():
    backend = NoBroadcastNoEmpty(NUMPY, "restricted")
    assert {r.status for r in run(backend, ["gemm2"], ["forward", "batching"])} == {"fail"}
    backend.sample_restrictions = frozenset({"broadcast", "empty"})
    results = run(backend, ["gemm2"], ["forward", "batching"])
    for r in results:
        assert r.status == "pass" and r.declared > 0 and r.samples > 0, r
    assert "declared samples skipped" in summary(results)


def test_sample_restrictions_must_be_known():
    backend = NoBroadcastNoEmpty(NUMPY, "restricted")
    backend.sample_restrictions = frozenset({"batches"})
    (r,) = run(backend, ["det"], ["forward"])
    assert r.status == "fail" and "unknown sample restriction(s) batches" in r.message


# ---- known failures ----------------------------------------------------------------------------
NEVER_RAISES = "xlinalg_conformance.broken:POTRF_NEVER_RAISES"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_known_failure_is_xfail_and_exit_status_counts_only_regressions(tmp_path, capsys):
    from xlinalg_conformance.__main__ import main

    argv = ["--backend", NEVER_RAISES, "--ops", "potrf", "--checks", "forward", "errors"]
    assert main(argv) == 1
    listed = write(tmp_path, "known.toml", '[potrf.errors]\nreason = "raises nothing"\nkind = "defect"\n')
    capsys.readouterr()
    assert main([*argv, "--known-failures", str(listed)]) == 0
    out = capsys.readouterr().out
    assert "xfail" in out and "xfail potrf × errors: raises nothing" in out
    # a regression elsewhere still fails the run
    regression = write(tmp_path, "other.json", json.dumps({"potrf": {"forward": "something else"}}))
    assert main([*argv, "--known-failures", str(regression)]) == 1


def test_unexpected_pass_is_reported(tmp_path, capsys):
    from xlinalg_conformance.__main__ import main

    listed = write(tmp_path, "known.toml", '[potrf]\nforward = "expected to fail"\n')
    assert main(["--backend", "numpy", "--ops", "potrf", "--checks", "forward", "--known-failures", str(listed)]) == 0
    out = capsys.readouterr().out
    assert "XPASS" in out and "remove the entry" in out


def test_known_failures_declared_by_the_backend(tmp_path):
    backend = NumpyBackend(operators={"potrf": xlinalg.core.operators()["potrf"]}, name="declares-known")
    backend.known_failures = write(tmp_path, "k.toml", '[potrf]\nforward = "listed"\n')
    (r,) = run(backend, ["potrf"], ["forward"])
    assert r.status == "xpass" and r.reason == "listed"


@pytest.mark.parametrize(
    "text, message",
    [
        ('[potrff]\nforward = "x"\n', "unknown operator 'potrff'"),
        ('[potrf]\nforwards = "x"\n', "potrf.forwards: unknown check"),
        ('[potrf.forward]\nreason = "x"\nkind = "bug"\n', "kind 'bug'"),
        ('[potrf.forward]\nreason = "x"\nurl = "y"\n', "unknown field(s) url"),
        ('[potrf.forward]\nkind = "defect"\n', "a reason is required"),
    ],
)
def test_known_failures_file_errors_name_the_entry(tmp_path, text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        kf.load(write(tmp_path, "k.toml", text))


def test_pytest_plugin_xfails_known_failures(tmp_path):
    listed = write(tmp_path, "k.toml", '[potrf]\nerrors = "listed"\n')
    (tmp_path / "listed_backend.py").write_text(
        f"from xlinalg_conformance.broken import potrf_never_raises\nBACKEND = potrf_never_raises()\nBACKEND.known_failures = {str(listed)!r}\n"
    )
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "xlinalg_conformance.plugin",
        "--conformance-backend=listed_backend:BACKEND",
        "--conformance-ops",
        "potrf",
        "--conformance-checks",
        "errors",
        "forward",
        "-rx",
        str(tmp_path / "empty"),
    ]
    (tmp_path / "empty").mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "1 passed, 1 xfailed" in out and "known failure: listed" in out, out
