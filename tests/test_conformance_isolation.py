"""Isolation: an operator that kills its process (abort, segfault) is a failed cell of that
operator, and the run goes on with the next check and the next operator."""

from __future__ import annotations

import textwrap

import pytest
from xlinalg_conformance.backends import NumpyBackend
from xlinalg_conformance.isolation import backend_spec
from xlinalg_conformance.runner import run, table

CRASHING = textwrap.dedent('''
    import ctypes
    import os

    from xlinalg_conformance.backends import NumpyBackend


    class Crashing(NumpyBackend):
        """det aborts the process; inverse reads address 0 (a segfault) on float32 input."""

        name = "crashing"

        def call(self, op, arrays, params):
            if op == "det":
                os.abort()
            if op == "inverse" and str(arrays[0].dtype) == "float32":
                ctypes.string_at(0)
            return super().call(op, arrays, params)


    class DeclaresIsolation(Crashing):
        name = "crashing-isolated"
        isolate = True


    BACKEND = Crashing()
    ISOLATED = DeclaresIsolation()
''')


@pytest.fixture
def crashing(tmp_path, monkeypatch):
    (tmp_path / "crashing_backend.py").write_text(CRASHING)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "crashing_backend"


def test_a_crash_fails_the_cell_and_the_run_continues(crashing):
    results = run(f"{crashing}:BACKEND", ["det", "inverse", "gemm2"], ["forward", "fd_grad", "dtype"], isolate=True)
    got = {(r.op, r.check): r for r in results}
    assert len(got) == 9
    for check in ("forward", "fd_grad", "dtype"):
        r = got["det", check]
        assert r.status == "fail" and r.crashed and "was killed by SIGABRT" in r.message, r
    for check in ("forward", "dtype"):  # float32 samples: segfault
        r = got["inverse", check]
        assert r.status == "fail" and r.crashed and "was killed by SIGSEGV" in r.message, r
        assert "crashing_backend.py" in r.message  # the stack printed by the dying process
    assert got["inverse", "fd_grad"].status == "pass"  # float64 only: the worker that replaced the dead one ran it
    assert all(got["gemm2", c].status == "pass" for c in ("forward", "fd_grad", "dtype"))
    assert "CRASH" in table(results)


def test_a_backend_declaring_isolation_is_isolated(crashing):
    (r,) = run(f"{crashing}:ISOLATED", ["det"], ["forward"])
    assert r.status == "fail" and r.crashed


def test_cli_isolate(crashing, capsys):
    from xlinalg_conformance.__main__ import main

    assert main(["--backend", f"{crashing}:BACKEND", "--ops", "det", "--checks", "forward", "--isolate"]) == 1
    assert "crashed: the process running det × forward was killed by SIGABRT" in capsys.readouterr().out


def test_backend_spec_finds_module_level_objects():
    from xlinalg_conformance.backends import NUMPY

    assert backend_spec(NUMPY) == "numpy"
    assert backend_spec("torch") == "torch"
    with pytest.raises(ValueError, match="needs a backend that can be imported there"):
        backend_spec(NumpyBackend(name="local"))
