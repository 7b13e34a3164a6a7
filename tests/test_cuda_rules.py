"""The GPU layer's operator rules (xlinalg.cuda.rules) agree with the pure Array-API rules.

They run on the CPU build of the per-matrix entries (``xl_hd_*``: the code the GPU kernels run),
on NumPy arrays and on torch CPU tensors (the adapters the CUDA bindings use), and where a GPU
is usable on the CUDA entries with torch CUDA tensors and CuPy arrays, for every flag combination, both dtypes,
orders up to the entries' limit and empty batches; failures come out per batch entry. The
interleaved and staged layouts give the packed layout's results bit for bit.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.cases import pure_rules
from xlinalg import lapack
from xlinalg.core import apply, operators, samples
from xlinalg.cuda import rules
from xlinalg.cuda.entries import DEF_FILE, LAYOUTS, entries, fixed_max_order

pytestmark = pytest.mark.skipif(lapack.library() is None, reason="compiled kernel layer not active")

#: (order, batch): empty, 1, small, the entries' largest order
ORDERS = [(0, (2,)), (1, ()), (3, (4,)), (8, (3, 2)), (rules.MAX_ORDER, (2,))]
#: and for the layouts: batches of several groups of the staged layout, the last one partial (on a
#: GPU: groups in several blocks), and orders whose groups take more shared memory than a block has
#: without asking (48 KiB: potrf's two arrays at order 14 in float32, most entries' at 11 in float64)
LAYOUT_ORDERS = [
    *ORDERS,
    (3, (2 * rules.STAGE_GROUP + 6,)),
    (6, (rules.STAGE_GROUP + 1,)),
    (4, (5 * rules.STAGE_GROUP + 7,)),
    (11, (40,)),
    (14, (40,)),
]
CASES = [
    pytest.param(name, params, id=f"{name}-{'-'.join(f'{k}={v}' for k, v in params.items())}")
    for name in rules.RULES
    for params in operators()[name].param_grid()
]


def _run(op, arrays, params, library, cotangents=None, rng=None):
    """Forward and VJP through :func:`rules.runner` on ``library``'s arrays and entries
    (:data:`LIBRARIES`), as NumPy arrays."""
    ax, to_library, to_numpy, ents = LIBRARIES[library]()
    call = apply.prepare(op, arrays, params)
    inputs = tuple(to_library(x) for x in call.inputs)
    outputs, status = rules.runner(op, "forward", inputs, ax, ents)(inputs, params=call.params)
    if cotangents is None:
        cotangents = tuple(rng.standard_normal(tuple(y.shape)).astype(arrays[0].dtype) for y in outputs)
    cts = tuple(to_library(g) for g in cotangents)
    grads, _ = rules.runner(op, "vjp", (*inputs, *outputs, *cts), ax, ents)(inputs, tuple(outputs), cts, params=call.params)
    back = [to_numpy(x) for x in (*outputs, *grads)]
    return call, back, None if status is None else to_numpy(status), cotangents


def _numpy():
    return rules.NumpyArrays(), np.asarray, np.asarray, rules.host_entries()


def _torch(device="cpu"):
    torch = pytest.importorskip("torch")
    from xlinalg.kernels.torch import TorchArrays

    ents = rules.host_entries() if device == "cpu" else rules.cuda_entries(0)
    if ents is None:
        pytest.skip("no usable CUDA device for the CUDA library")
    return TorchArrays(), lambda x: torch.from_numpy(np.array(x)).to(device), lambda x: x.cpu().numpy(), ents


def _cupy():
    cupy = pytest.importorskip("cupy")
    from xlinalg.kernels.cupy import CupyArrays

    ents = rules.cuda_entries(0)
    if ents is None:
        pytest.skip("no usable CUDA device for the CUDA library")
    return CupyArrays(), cupy.asarray, cupy.asnumpy, ents


#: name -> () -> (Arrays, to the library, to NumPy, Entries)
LIBRARIES = {"numpy": _numpy, "torch": _torch, "torch-cuda": lambda: _torch("cuda"), "cupy": _cupy}


def test_max_order_is_the_entries_limit():
    text = (DEF_FILE.parent / "hd.h").read_text()
    assert rules.MAX_ORDER == int(re.search(r"constexpr int kMaxOrder = (\d+);", text).group(1))


@pytest.mark.parametrize("library", list(LIBRARIES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name,params", CASES)
def test_rules_match_pure_rules(name, params, dtype, library):
    op = operators()[name]
    rng = np.random.default_rng(11)
    eps = np.finfo(dtype).eps
    for n, batch in ORDERS:
        arrays, kappa = samples.draw(op, rng, [batch], n, params)  # garbage in unread triangles
        arrays = [a.astype(dtype) for a in arrays]
        before = [a.copy() for a in arrays]
        call, got, status, cotangents = _run(op, arrays, params, library, rng=rng)
        want_outputs, want_grads = pure_rules(call, cotangents)
        assert status is None or not status.any()
        tol = 50 * max(n, 1) * eps * kappa
        for g, want in zip(got, (*want_outputs, *want_grads)):
            assert g.shape == want.shape and g.dtype == want.dtype
            scale = max(float(np.max(np.abs(want))), 1.0) if want.size else 1.0
            err = float(np.max(np.abs(g - want))) / scale if want.size else 0.0
            assert err <= tol, f"{name} {params} n={n} {dtype}: relative error {err:.2e} > {tol:.2e}"
        for a, b in zip(arrays, before):
            np.testing.assert_array_equal(a, b)  # inputs untouched


def _recording_layouts(monkeypatch, library) -> list:
    """The layouts of the entries ``library``'s rules call from now on."""
    ents = LIBRARIES[library]()[3]
    seen, function = [], ents.function

    def recording(name, suffix, layout="packed"):
        seen.append(layout)
        return function(name, suffix, layout)

    monkeypatch.setattr(ents, "function", recording)
    return seen


@pytest.mark.parametrize("library", list(LIBRARIES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name,params", CASES)
@pytest.mark.parametrize("layout", [lay for lay in LAYOUTS if lay != "packed"])
def test_layouts_agree_bit_for_bit(layout, name, params, dtype, library, monkeypatch):
    """Each thread computes the same operations on the same values in every layout: only the
    addresses differ (and the arrays' transposes, or their copies in the staging area, before
    and after)."""
    op = operators()[name]
    rng = np.random.default_rng(5)
    seen = _recording_layouts(monkeypatch, library)
    for n, batch in LAYOUT_ORDERS:
        arrays, _ = samples.draw(op, rng, [batch], n, params)
        arrays = [a.astype(dtype) for a in arrays]
        monkeypatch.setenv("XLINALG_CUDA_LAYOUT", "packed")
        _, packed, packed_status, cotangents = _run(op, arrays, params, library, rng=rng)
        monkeypatch.setenv("XLINALG_CUDA_LAYOUT", layout)
        _, other, status, _ = _run(op, arrays, params, library, cotangents=cotangents)
        for a, b in zip(other, packed):
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_array_equal(a, b, err_msg=f"{name} {params} n={n} batch={batch}")
        if status is not None:
            np.testing.assert_array_equal(status, packed_status)
    assert set(seen) == {"packed", layout}  # batches of one run packed: both were called


@pytest.mark.parametrize("library", list(LIBRARIES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("lower", [True, False])
def test_fixed_order_kernels_agree_with_the_run_time_order_ones_bit_for_bit(lower, dtype, library, monkeypatch):
    """potrf and its VJP, whose packed launches run a kernel compiled for the order (fixed.h) up
    to the dtype's largest (16 in float32, 12 in float64): at each such order and the next, with
    an entry that is not positive definite and one with a NaN on its diagonal, the same results
    bit for bit as the interleaved layout's kernels, which take the order at run time."""
    assert {name for name, entry in entries().items() if entry.fixed} == {"potrf", "potrf_vjp"}
    op, rng, params = operators()["potrf"], np.random.default_rng(7), {"lower": lower}
    largest = fixed_max_order("f32" if dtype == "float32" else "f64")
    assert largest == (16 if dtype == "float32" else 12)
    for n in range(1, largest + 2):
        (a,), _ = samples.draw(op, rng, [(4,)], n, params)
        a = a.astype(dtype)
        a[1] = -np.eye(n, dtype=dtype)
        a[2, n // 2, n // 2] = np.nan
        monkeypatch.setenv("XLINALG_CUDA_LAYOUT", "packed")
        _, packed, packed_status, cotangents = _run(op, [a], params, library, rng=rng)
        monkeypatch.setenv("XLINALG_CUDA_LAYOUT", "interleaved")
        _, other, status, _ = _run(op, [a], params, library, cotangents=cotangents)
        for x, y in zip(other, packed):
            np.testing.assert_array_equal(x, y, err_msg=f"n={n}")
        np.testing.assert_array_equal(status, packed_status)
        assert list(status != 0) == [False, True, True, False], n


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_staged_calls_whose_groups_need_too_much_shared_memory_run_packed(dtype, monkeypatch):
    """A group stages every array of its 32 entries: potrf's two of order n take
    (2 n² + 1) · 33 · itemsize bytes (with the status), within the 96 KiB up to order 19 in
    float32 and 13 in float64."""
    monkeypatch.setenv("XLINALG_CUDA_LAYOUT", "staged")
    seen = _recording_layouts(monkeypatch, "numpy")
    op, itemsize = operators()["potrf"], np.dtype(dtype).itemsize
    largest = max(n for n in range(1, rules.MAX_ORDER + 1) if rules.stage_capacity(2 * n * n + 1, itemsize) <= rules.STAGE_MAX_BYTES)
    assert largest == (19 if dtype == "float32" else 13)
    for n in (largest, largest + 1):
        x = np.random.default_rng(n).standard_normal((40, n, n))
        a = (x @ x.transpose(0, 2, 1) + n * np.eye(n)).astype(dtype)
        (factor,), status = rules.runner(op, "forward", (a,), rules.NumpyArrays(), rules.host_entries())((a,), params={"lower": True})
        np.testing.assert_allclose(factor @ factor.transpose(0, 2, 1), a, rtol=1e-4)
    assert seen == ["staged", "packed"]


class _DeviceRecording(rules.HostEntries):
    """The CPU build, with a device to switch: records on which device each entry runs."""

    def __init__(self, lib):
        super().__init__(lib)
        self.current, self.calls = "the caller's", []

    def on_device(self, index):
        return rules.DeviceGuard(lambda: self._enter(index), self._leave)

    def _enter(self, index):
        saved, self.current = self.current, index
        return (saved,)

    def _leave(self, saved):
        (self.current,) = saved

    def function(self, name, suffix, layout="packed"):
        fn = super().function(name, suffix, layout)
        return lambda *args: self.calls.append((name, self.current)) or fn(*args)


class _OnDevice3(rules.NumpyArrays):
    def device(self, x):
        return 3


@pytest.mark.skipif(lapack.library() is None, reason="compiled kernel layer not active")
def test_a_rule_runs_its_entries_on_its_arrays_device_and_leaves_the_callers_current():
    ents = _DeviceRecording(rules.host_entries()._lib)
    op = operators()["potrs"]
    a = np.broadcast_to(4 * np.eye(3), (2, 3, 3)).copy()
    b = np.ones((2, 3, 1))
    (x,), _ = rules.runner(op, "forward", (a, b), _OnDevice3(), ents)((a, b), params={"lower": True})
    np.testing.assert_allclose(x, b / 16)
    assert ents.calls == [("potrs", 3)] and ents.current == "the caller's"
    ents.calls.clear()
    with pytest.raises(KeyError):  # back after an error inside, too
        rules.runner(op, "forward", (a, b), _OnDevice3(), ents)((a, b), params={})
    assert ents.current == "the caller's"


class _FakeCudaLibrary:
    """``xl_cuda_get_device``/``xl_cuda_set_device`` of a process whose current device is
    ``current`` (``fail``: the status the next get returns); ``images``: the status
    ``xl_cuda_kernel_image`` returns on each device (0 where the library has its code)."""

    def __init__(self, current, images=None):
        self.current, self.sets, self.fail = current, [], 0
        self.images, self.probes = images or {}, []

    def xl_cuda_kernel_image(self):
        self.probes.append(self.current)
        return self.images.get(self.current, 0)

    def xl_cuda_get_device(self, out):
        out._obj.value = -1 if self.fail else self.current
        return self.fail

    def xl_cuda_set_device(self, index):
        self.sets.append(index)
        self.current = index
        return 0

    def xl_cuda_shared_limit(self, out):
        out._obj.value = 1000 * (self.current + 1)
        return 0


def test_the_cuda_librarys_device_switch_puts_the_callers_device_back(monkeypatch):
    import xlinalg.cuda

    monkeypatch.setattr(xlinalg.cuda, "error_name", lambda status: f"cudaError {status}")
    monkeypatch.setattr(xlinalg.cuda, "error_string", lambda status: "fake")
    lib = _FakeCudaLibrary(current=1)
    ents = rules.CudaEntries(lib)
    with ents.on_device(None):
        pass
    with ents.on_device(1):  # already current: nothing set
        assert ents.shared_limit(1) == 2000
    assert lib.sets == []
    with ents.on_device(0):
        assert lib.current == 0 and ents.shared_limit(0) == 1000 and ents.shared_limit(0) == 1000
    assert lib.sets == [0, 1] and lib.current == 1
    with pytest.raises(KeyError), ents.on_device(2):
        raise KeyError("inside")
    assert lib.sets == [0, 1, 2, 1] and lib.current == 1
    lib.fail = 35
    with pytest.raises(RuntimeError, match="cudaGetDevice failed: cudaError 35"):
        with ents.on_device(0):
            pass
    assert lib.current == 1


def test_the_library_checks_for_its_code_on_each_device_once(monkeypatch):
    """``runs_on`` asks ``xl_cuda_kernel_image`` on the device itself (then puts the caller's
    back), once per device that answers, and keeps why a device has no code."""
    import xlinalg.cuda

    names = {209: "cudaErrorNoKernelImageForDevice", 2: "cudaErrorMemoryAllocation"}
    monkeypatch.setattr(xlinalg.cuda, "error_name", lambda status: names[status])
    monkeypatch.setattr(xlinalg.cuda, "error_string", lambda status: "fake")
    lib = _FakeCudaLibrary(current=0, images={1: 209, 2: 2})
    ents = rules.CudaEntries(lib)
    assert ents.runs_on(0) and not ents.runs_on(1) and not ents.runs_on(1) and ents.runs_on(0)
    assert lib.probes == [0, 1] and lib.current == 0
    # another error decides nothing (the launch reports it): asked again next time
    assert ents.runs_on(2) and ents.runs_on(2) and lib.probes == [0, 1, 2, 2]
    assert ents.missing_code() == {1: "cudaErrorNoKernelImageForDevice (fake)"}


def test_staged_calls_respect_the_devices_shared_memory_limit(monkeypatch):
    """A device that lets a block have less than 96 KiB (64 KiB on sm_75) stages less: potrf in
    float32 up to order 15 there, instead of 19."""
    monkeypatch.setenv("XLINALG_CUDA_LAYOUT", "staged")
    ents = rules.host_entries()
    seen = _recording_layouts(monkeypatch, "numpy")
    monkeypatch.setattr(ents, "shared_limit", lambda index: 65536)
    op = operators()["potrf"]
    for n in (15, 16):
        a = np.broadcast_to(np.eye(n, dtype=np.float32), (40, n, n))
        (factor,), _ = rules.runner(op, "forward", (a,), rules.NumpyArrays(), ents)((a,), params={"lower": True})
        np.testing.assert_array_equal(factor, a)
    assert seen == ["staged", "packed"]


def test_an_unknown_layout_is_an_error(monkeypatch):
    monkeypatch.setenv("XLINALG_CUDA_LAYOUT", "tiled")
    with pytest.raises(ValueError, match="XLINALG_CUDA_LAYOUT must be one of .*'tiled'"):
        rules.layout()


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("library", list(LIBRARIES))
@pytest.mark.parametrize("name", [n for n in rules.RULES if operators()[n].failure])
def test_failing_entries_are_nan_and_flagged(name, library, layout, monkeypatch):
    monkeypatch.setenv("XLINALG_CUDA_LAYOUT", layout)
    op = operators()[name]
    rng = np.random.default_rng(3)
    params = op.param_grid()[0]
    arrays, _ = samples.draw(op, rng, [(3,)], 5, params)
    broken = op.breaks(tuple(a[1:2] for a in arrays), params)
    arrays = [np.concatenate([a[:1], b, a[2:]]) for a, b in zip(arrays, broken)]
    _, got, status, _ = _run(op, arrays, params, library, rng=rng)
    assert status.tolist() == [0, 1, 0]
    assert np.all(np.isnan(got[0][1])) and np.all(np.isfinite(got[0][[0, 2]]))


def test_no_rule_beyond_the_order_limit_or_for_other_dtypes():
    op = operators()["potrf"]
    ents, ax = rules.host_entries(), rules.NumpyArrays()
    n = rules.MAX_ORDER
    assert rules.runner(op, "forward", (np.eye(n),), ax, ents) is not None
    assert rules.runner(op, "forward", (np.eye(n + 1),), ax, ents) is None
    syevd, big = operators()["syevd"], rules.BLOCK_MAX_ORDER
    assert rules.runner(syevd, "forward", (np.eye(big),), ax, ents) is not None
    assert rules.runner(syevd, "forward", (np.eye(big + 1),), ax, ents) is None
    assert rules.runner(syevd, "vjp", (np.eye(n + 1), np.eye(n + 1), np.ones(n + 1)), ax, ents) is None
    assert rules.runner(op, "forward", (np.eye(3, dtype=np.float16),), ax, ents) is None
    # only the square arguments have orders: a batch (40, 40) of 3 × 3 matrices fits, its
    # sumlogdiag's outputs and cotangents of shape (40, 40) included; right-hand sides any width
    sld, a = operators()["sumlogdiag"], np.broadcast_to(np.eye(3), (40, 40, 3, 3))
    assert rules.runner(sld, "vjp", (a, np.zeros((40, 40)), np.ones((40, 40))), ax, ents) is not None
    assert rules.runner(operators()["potrs"], "forward", (np.eye(3), np.ones((3, 100))), ax, ents) is not None
    assert rules.runner(operators()["gelqf"], "forward", (np.eye(3),), ax, ents) is None


@pytest.mark.parametrize("library", list(LIBRARIES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_syevd_above_the_thread_entries_runs_a_block_per_matrix(dtype, library, layout, monkeypatch):
    """Orders 33 to 64: the forward runs the block entry (in the packed layout whatever the
    setting: a block's threads share each matrix), and agrees with the pure rules."""
    monkeypatch.setenv("XLINALG_CUDA_LAYOUT", layout)
    op = operators()["syevd"]
    rng = np.random.default_rng(7)
    ax, to_library, to_numpy, ents = LIBRARIES[library]()
    seen, function = [], ents.function
    monkeypatch.setattr(ents, "function", lambda name, suffix, layout="packed": seen.append((name, layout)) or function(name, suffix, layout))
    eps = np.finfo(dtype).eps
    for n in (rules.MAX_ORDER + 1, 47, rules.BLOCK_MAX_ORDER):
        arrays, kappa = samples.draw(op, rng, [(3,)], n, {})
        arrays = [a.astype(dtype) for a in arrays]
        call = apply.prepare(op, arrays, {})
        inputs = tuple(to_library(x) for x in call.inputs)
        outputs, status = rules.runner(op, "forward", inputs, ax, ents)(inputs, params=call.params)
        got = [to_numpy(x) for x in outputs]
        (want, _) = pure_rules(call, tuple(np.zeros(tuple(y.shape), dtype) for y in got))
        tol = 50 * n * eps * kappa
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and np.abs(g - w).max() / max(np.abs(w).max(), 1.0) <= tol
    assert seen == [("syevd_block", "packed")] * 3
