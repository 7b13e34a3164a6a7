"""The GPU layer's kernels with their device code on CPU threads (``tests/device_emulation``).

The CPU build of the per-matrix code (``xl_hd_*``) runs a batch's entries one after the other and
a staged group's copies on its first thread; the kernels (``kernels.cuh``) share them out between
the threads of a warp or a block, with ``__syncwarp``/``__syncthreads`` between, and the staged
and block kernels take their device branches (``__CUDA_ARCH__``). Here those kernels run as they
would on a GPU, one std::thread per GPU thread, with CUDA's grid and block sizes (the grid capped
at two blocks, so that the grid-stride loops wrap), shared memory that is not zero, and a trap or
a deadlock (a barrier some thread never reaches) failing the test by name: every operator rule,
every layout, both dtypes, batches of several blocks and partial warps give the CPU build's
results bit for bit (both built for the baseline instruction set by the same compiler: the same
roundings), and a ThreadSanitizer build finds no data race between the threads of a warp or a
block.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xlinalg import lapack
from xlinalg.core import apply, operators, samples
from xlinalg.cuda import rules, runtime
from xlinalg.cuda.entries import LAYOUTS, entries
from xlinalg.cuda.sources import SOURCE_DIR, sources_id
from xlinalg.lapack import build

pytestmark = pytest.mark.skipif(lapack.library() is None, reason="compiled kernel layer not active")

HERE = Path(__file__).parent / "device_emulation"
#: The grid at most: two blocks, so that a batch of more than two blocks' entries wraps around
#: the kernels' grid-stride loops.
MAX_BLOCKS = 2
#: (order, batch): empty, one, a partial warp, several blocks of thread kernels (64 threads) and
#: of staged kernels (four warps of 32 entries), a group beyond 48 KiB of shared memory
ORDERS = [(0, (2,)), (1, ()), (3, (5,)), (4, (2 * 128 + 37,)), (8, (3, 11)), (11, (33,))]


def _build(source: str = "kernels_on_threads.cpp", *extra: str) -> Path:
    """``tests/device_emulation/<source>`` built for CPU threads with the further compiler and
    linker flags ``extra`` (cached per sources and flags); skips the test where it cannot be
    built."""
    key = (sources_id(), hashlib.sha256((HERE / "emulator.h").read_bytes()).hexdigest())
    flags = (*("-O1" if f == "-O3" else f for f in build.COMPILE_FLAGS), *extra)
    stem = "xlinalg_cuda_" + source.removesuffix(".cpp")
    path, why = build.cached_library(stem, "GPU kernels on CPU threads", [HERE / source], [SOURCE_DIR, HERE], key, flags, extra)
    if path is None:
        pytest.skip(why)
    return path


def emulated_entries(path) -> EmulatedEntries:
    """:class:`EmulatedEntries` of the library at ``path``."""
    lib = ctypes.CDLL(str(path))
    lib.xl_emu_failure.restype, lib.xl_emu_failure.argtypes = ctypes.c_char_p, []
    return EmulatedEntries(lib)


@pytest.fixture(scope="module")
def emulated():
    return emulated_entries(_build())


class EmulatedEntries(rules.HostEntries):
    """The kernels on CPU threads (``xl_emu_*``), launched with the CUDA library's grid and block
    (:func:`xlinalg.cuda.runtime.geometry`), the grid at most :data:`MAX_BLOCKS`."""

    def function(self, name, suffix, layout="packed"):
        entry = entries()[name]
        fn = getattr(self._lib, "xl_emu" + entry.symbol(suffix, layout)[len("xl_cuda") :])
        fn.restype, fn.argtypes = None, [*(p.ctype for p in entry.parameters(layout)), ctypes.c_int, ctypes.c_int, ctypes.c_int64]
        itemsize = 4 if suffix == "f32" else 8

        def launch(*args):
            capacity = rules.stage_capacity(args[-1], itemsize) if layout == "staged" else 0
            grid, threads, shared = runtime.geometry(entry, layout, args[entry.batch_index], capacity)
            fn(*args, min(grid, MAX_BLOCKS), threads, shared)
            fault = self._lib.xl_emu_failure()
            if fault:
                raise AssertionError(f"{fn.__name__}: {fault.decode()}")

        return launch


def _results(op, arrays, params, ents, cotangents):
    """The forward's outputs and status, then the VJP's cotangents (where the rule has one), as
    NumPy arrays, through the GPU rules on ``ents``."""
    ax = rules.NumpyArrays()
    call = apply.prepare(op, arrays, params)
    outputs, status = rules.runner(op, "forward", call.inputs, ax, ents)(call.inputs, params=call.params)
    results = [*outputs, status]
    vjp = rules.runner(op, "vjp", (*call.inputs, *outputs, *cotangents), ax, ents)
    if vjp is not None:
        results += vjp(call.inputs, tuple(outputs), cotangents, params=call.params)[0]
    return results


CASES = [
    pytest.param(name, params, id=f"{name}-{'-'.join(f'{k}={v}' for k, v in params.items())}")
    for name in rules.RULES
    for params in operators()[name].param_grid()
]


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name,params", CASES)
def test_kernels_on_threads_give_the_cpu_builds_results(name, params, dtype, layout, emulated, monkeypatch):
    monkeypatch.setenv("XLINALG_CUDA_LAYOUT", layout)
    op, rng = operators()[name], np.random.default_rng(17)
    orders = ORDERS + ([(rules.MAX_ORDER + 1, (3,)), (rules.BLOCK_MAX_ORDER, (2,))] if name == "syevd" and layout == "packed" else [])
    for n, batch in orders:
        arrays, _ = samples.draw(op, rng, [batch], n, params)
        arrays = [a.astype(dtype) for a in arrays]
        if op.failure and batch and batch[0] > 2:  # a failing entry: its outputs NaN, its status set
            broken = op.breaks(tuple(a[1:2] for a in arrays), params)
            arrays = [np.concatenate([a[:1], b, a[2:]]) for a, b in zip(arrays, broken)]
        call = apply.prepare(op, arrays, params)
        outputs, _ = rules.runner(op, "forward", call.inputs, rules.NumpyArrays(), rules.host_entries())(call.inputs, params=call.params)
        cotangents = tuple(rng.standard_normal(tuple(y.shape)).astype(dtype) for y in outputs)
        want = _results(op, arrays, params, rules.host_entries(), cotangents)
        got = _results(op, arrays, params, emulated, cotangents)
        for g, w in zip(got, want):
            if w is None:
                assert g is None
                continue
            np.testing.assert_array_equal(g, w, err_msg=f"{name} {params} {dtype} {layout} n={n} batch={batch}")


def exercise_every_rule(ents) -> None:
    """Every rule's forward and VJP on ``ents`` once per layout, at orders and batches that take
    several warps and blocks (and ``syevd``'s block entry): for the race check below."""
    rng, saved = np.random.default_rng(3), os.environ.get("XLINALG_CUDA_LAYOUT")
    for layout in LAYOUTS:
        os.environ["XLINALG_CUDA_LAYOUT"] = layout
        for name in rules.RULES:
            op = operators()[name]
            params = op.param_grid()[-1]
            for n, batch in [(3, (40,)), (5, (2 * 128 + 7,))] + ([(40, (2,))] if name == "syevd" and layout == "packed" else []):
                arrays, _ = samples.draw(op, rng, [batch], n, params)
                call = apply.prepare(op, arrays, params)
                outputs, _ = rules.runner(op, "forward", call.inputs, rules.NumpyArrays(), rules.host_entries())(call.inputs, params=call.params)
                _results(op, arrays, params, ents, tuple(rng.standard_normal(tuple(y.shape)) for y in outputs))
    if saved is None:
        os.environ.pop("XLINALG_CUDA_LAYOUT")
    else:
        os.environ["XLINALG_CUDA_LAYOUT"] = saved


@pytest.mark.parametrize(
    "which, fault",
    [
        (0, "a deadlock on the device"),
        (1, "the lanes of a warp pass different masks"),
        (2, "__trap()"),
        (4, "wrote beyond the dynamic shared memory of its launch"),
    ],
)
def test_the_emulation_catches_deadlocks_bad_masks_traps_and_overruns(which, fault):
    """The emulation's own check: kernels with those faults (``broken_kernels.cpp``) end their
    launch with the fault named, not a hang; a data race is not a fault here (ThreadSanitizer's
    to find, below), nor are writes within the shared memory. The deadlock is found after a
    limit of 300 ms; the other launches have the default 20 s, which no thread of a correct
    launch waits even on a stalled machine."""
    lib = ctypes.CDLL(str(_build("broken_kernels.cpp")))
    lib.xl_emu_broken.restype, lib.xl_emu_broken.argtypes = ctypes.c_char_p, [ctypes.c_int, ctypes.c_int]
    assert fault in (lib.xl_emu_broken(which, 300 if which == 0 else 20_000) or b"").decode()
    assert lib.xl_emu_broken(3, 20_000) is None
    assert lib.xl_emu_broken(5, 20_000) is None


def _under_tsan(code: str, *args: str):
    """``python -c code args...`` with ThreadSanitizer's runtime preloaded, from the repository
    root, with address randomization off where ``setarch -R`` can do that (on kernels with more
    random bits in mmap addresses, older ThreadSanitizer runtimes fail at random at start-up,
    "unexpected memory mapping"); skips the test where there is no runtime, or where it cannot
    start here."""
    cxx = build.compiler()
    runtime_library = cxx and subprocess.run([cxx, "-print-file-name=libtsan.so"], capture_output=True, text=True).stdout.strip()
    if not runtime_library or not Path(runtime_library).is_file():
        pytest.skip("no ThreadSanitizer runtime (libtsan.so)")
    fixed_addresses = ["setarch", platform.machine(), "-R"]
    if not shutil.which("setarch") or subprocess.run([*fixed_addresses, "true"], capture_output=True).returncode:
        fixed_addresses = []
    env = {**os.environ, "LD_PRELOAD": runtime_library, "TSAN_OPTIONS": "report_signal_unsafe=0"}
    if subprocess.run([*fixed_addresses, sys.executable, "-c", "pass"], env=env, capture_output=True).returncode:
        pytest.skip("ThreadSanitizer does not start on this machine")
    command = [*fixed_addresses, sys.executable, "-c", code, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, cwd=HERE.parent.parent, timeout=900)


def test_kernels_on_threads_have_no_data_races():
    """Built with ThreadSanitizer (preloaded into a Python of its own), every rule in every layout
    runs without a data race between the threads of a warp or a block: each phase's items and
    each lane's copies touch their own data, and a barrier separates what one thread writes from
    what another reads (with a phase's barrier removed it reports dozens; a kernel with a race
    shows it reports one here)."""
    racy = _build("broken_kernels.cpp", "-fsanitize=thread", "-g")
    code = "import ctypes, sys; ctypes.CDLL(sys.argv[1]).xl_emu_broken(3, 1000)"
    control = _under_tsan(code, str(racy))  # the check sees a race where there is one
    assert "ThreadSanitizer: data race" in control.stderr, control.stderr[-3000:]
    path = _build("kernels_on_threads.cpp", "-fsanitize=thread", "-g")
    code = "import sys; from tests.test_cuda_emulated import *; exercise_every_rule(emulated_entries(sys.argv[1])); print('done')"
    run = _under_tsan(code, str(path))
    assert run.returncode == 0 and run.stdout.strip().endswith("done"), run.stderr[-6000:]
    assert "ThreadSanitizer" not in run.stderr, run.stderr[-6000:]
