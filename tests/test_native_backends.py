"""The native backends: their known-failures files are valid, their layout conversions agree
with xlinalg, and what they declare reaches the results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from xlinalg_conformance import known_failures as kf
from xlinalg_conformance.backends import BACKENDS
from xlinalg_conformance.backends.native import packed_indices, packed_order

import xlinalg

KNOWN = Path(__file__).resolve().parents[1] / "conformance" / "backends" / "known_failures"
NATIVE = ("torch-native", "jax-native", "jax-native-jit", "mxnet-native")


def test_native_backends_are_registered():
    assert set(NATIVE) <= set(BACKENDS)


@pytest.mark.parametrize("backend", NATIVE)
def test_known_failures_files_are_valid_and_reproduced(backend):
    entries = kf.load(KNOWN / f"{backend}.toml")
    assert entries
    by_reason = {}
    for e in entries.values():
        by_reason.setdefault(e.reason, []).append(e)
    for reason, group in by_reason.items():  # every classified failure has a reproduction
        assert any(e.repro for e in group), reason
        assert len({e.kind for e in group}) == 1, reason


@pytest.mark.parametrize("n, offset", [(0, 0), (1, 0), (4, 0), (4, 1), (4, -1), (4, 2), (4, -3)])
@pytest.mark.parametrize("lower", [True, False])
def test_packed_triangles_follow_xlinalg(n, offset, lower):
    a = np.arange(float(n * n)).reshape(n, n)
    rows, cols, transposed = packed_indices(n, offset, lower)
    got = (a.T if transposed else a)[rows, cols]
    want = xlinalg.extracttrian(a, offset=offset, lower=lower)
    np.testing.assert_array_equal(got, want)
    if n:  # (no order is implied by an empty triangle)
        assert packed_order(len(want), offset) == n


def test_torch_native_layout_operators_conform():
    pytest.importorskip("torch")
    from xlinalg_conformance.runner import run

    results = run("torch-native", ["extracttrian", "maketrian", "makediag", "trsm"], ["forward", "fd_grad"])
    assert all(r.status == "pass" for r in results), [(r.op, r.check, r.message) for r in results if r.status != "pass"]


def test_jax_native_declares_makediag_unsupported():
    pytest.importorskip("jax")
    from xlinalg_conformance.runner import run

    (r,) = run("jax-native", ["makediag"], ["errors"])
    assert r.status == "declared" and "jnp.diag" in r.reason
