"""The GPU kernels built at run time (xlinalg.cuda.runtime): NVRTC and the driver API.

Without a GPU or a driver:

* NVRTC compiles ``kernels.cuh`` to a CUBIN for sm_90 whose symbol table holds every
  ``xl_kernel_*``, and to PTX whose ``.entry`` parameters have the sizes the packer gives
  (where an NVRTC library is installed);
* the disk cache: one compile per sources, target and NVRTC version, written atomically;
* the kernel parameters follow ``entries.def`` for every entry, and the grid is the CUDA
  library's; through a stand-in driver whose "kernel" is the entry's CPU build, the operator
  rules run through :class:`RuntimeEntries` and agree with the CPU build;
* without a driver, NVRTC or a working compile, ``runtime_entries()`` is ``None`` with a reason,
  and nothing raises; ``XLINALG_KERNELS=python`` turns it off.

With a GPU: potrf through :class:`RuntimeEntries` on torch CUDA tensors against the CPU build.
"""

from __future__ import annotations

import ctypes
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from xlinalg import cuda, lapack
from xlinalg.core import operators
from xlinalg.cuda import rules, runtime
from xlinalg.cuda.entries import DTYPES, LAYOUTS, entries

KERNELS = {kernel for entry in entries().values() for s in DTYPES for kernel in entry.kernels(s)}
DTYPES_BY_NAME = {name: suffix for suffix, name in DTYPES.items()}


@pytest.fixture(scope="module")
def nvrtc():
    lib = runtime.nvrtc_library()
    if lib is None:
        pytest.skip("no NVRTC library (pip install nvidia-cuda-nvrtc, or a CUDA toolkit with libnvrtc)")
    return lib


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """An empty cache folder as ``XLINALG_CACHE_DIR`` for this module."""
    with pytest.MonkeyPatch.context() as mp:
        folder = tmp_path_factory.mktemp("runtime-cache")
        mp.setenv("XLINALG_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="module")
def images(nvrtc, cache):
    """The kernels compiled for sm_90 (CUBIN) and compute_90 (PTX), through the cache."""
    return {arch: runtime.kernel_image(arch, nvrtc) for arch in ("sm_90", "compute_90")}


# ---- NVRTC -----------------------------------------------------------------------------------


def _elf_functions(image: bytes) -> tuple[int, set[str]]:
    """The machine and the names of the function symbols of a 64-bit little-endian ELF file."""
    assert image[:4] == b"\x7fELF" and image[4] == 2 and image[5] == 1
    machine = struct.unpack_from("<H", image, 0x12)[0]
    shoff = struct.unpack_from("<Q", image, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", image, 0x3A)
    # sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_info, sh_addralign, sh_entsize
    sections = [struct.unpack_from("<IIQQQQIIQQ", image, shoff + i * shentsize) for i in range(shnum)]
    names = set()
    for section in sections:
        if section[1] != 2:  # SHT_SYMTAB
            continue
        strings = sections[section[6]][4]
        for offset in range(section[4], section[4] + section[5], 24):
            name, info = struct.unpack_from("<IB", image, offset)
            if info & 0xF == 2:  # STT_FUNC
                names.add(image[strings + name : image.index(b"\0", strings + name)].decode())
    return machine, names


def test_cubin_for_sm90_has_every_kernel(images, cache):
    machine, functions = _elf_functions(images["sm_90"])
    assert machine == 190  # EM_CUDA
    assert {f for f in functions if f.startswith("xl_kernel_")} == KERNELS
    nvrtc = runtime.nvrtc_library()
    assert sorted(p.name for p in cache.iterdir()) == sorted(runtime.cache_path(arch, nvrtc).name for arch in ("sm_90", "compute_90"))


_PTX_SIZES = {"u32": 4, "s32": 4, "b32": 4, "u64": 8, "s64": 8, "b64": 8, "f64": 8}


def test_ptx_entries_take_the_packed_parameters(images):
    """Every kernel of the PTX, with parameters of the sizes, in the order, of the packer's buffers
    (``int`` 4 bytes, ``int64_t`` batch, ``double`` and pointers 8)."""
    ptx = images["compute_90"]
    assert ptx.endswith(b"\0")  # the driver loads PTX as a C string
    text = ptx.rstrip(b"\0").decode()
    found = dict(re.findall(r"\.entry\s+(\w+)\s*\(([^)]*)\)", text))
    assert set(found) == KERNELS
    for entry in entries().values():
        for lay in entry.layouts:
            args = [i + 1 for i in range(len(entry.parameters(lay)))]
            values, _ = runtime.pack(entry, args, lay)
            for kernel in (entry.kernel(s, lay) for s in DTYPES):
                params = re.findall(r"\.param\s+\.(\w+)", found[kernel])
                assert [_PTX_SIZES[t] for t in params] == [ctypes.sizeof(v) for v in values], kernel
                assert [t == "f64" for t in params] == [p.type == "double" for p in entry.parameters(lay)], kernel


def test_targets(nvrtc):
    assert runtime.target(90, nvrtc) == "sm_90"
    count = ctypes.c_int()
    nvrtc.nvrtcGetNumSupportedArchs(ctypes.byref(count))
    archs = (ctypes.c_int * count.value)()
    nvrtc.nvrtcGetSupportedArchs(archs)
    assert runtime.target(999, nvrtc) == f"compute_{max(archs)}"  # newer than NVRTC knows: PTX
    with pytest.raises(RuntimeError, match="none up to"):
        runtime.target(min(archs) - 1, nvrtc)


def test_a_compile_error_raises_with_the_log(nvrtc):
    with pytest.raises(RuntimeError, match="sm_1"):
        runtime.compile_kernels("sm_1", nvrtc)


# ---- the cache -------------------------------------------------------------------------------


def test_cache_compiles_once_per_sources_target_and_nvrtc(tmp_path, monkeypatch):
    monkeypatch.setenv("XLINALG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(runtime, "nvrtc_version", lambda nvrtc: "13.0")
    compiles = []

    def compile_kernels(arch, nvrtc):
        compiles.append((arch, runtime.sources_id()))
        return f"image {arch} {runtime.sources_id()}".encode()

    monkeypatch.setattr(runtime, "compile_kernels", compile_kernels)
    first = runtime.kernel_image("sm_90", None)
    path = runtime.cache_path("sm_90", None)
    stamp = path.stat().st_mtime_ns
    assert runtime.kernel_image("sm_90", None) == first and len(compiles) == 1 and path.stat().st_mtime_ns == stamp
    assert path.name.startswith(f"cuda-kernels-{cuda.sources_id()}-sm_90-nvrtc13.0-") and path.suffix == ".cubin"
    runtime.kernel_image("compute_90", None)
    assert runtime.cache_path("compute_90", None).suffix == ".ptx" and len(compiles) == 2
    monkeypatch.setattr(runtime, "sources_id", lambda: "0123456789abcdef")
    assert runtime.kernel_image("sm_90", None) == b"image sm_90 0123456789abcdef" and len(compiles) == 3
    monkeypatch.setattr(runtime, "nvrtc_version", lambda nvrtc: "13.1")
    runtime.kernel_image("sm_90", None)
    assert len(compiles) == 4 and len(list(path.parent.iterdir())) == 4  # no partial file left
    runtime.kernel_image("sm_90", None)
    assert len(compiles) == 4


@pytest.mark.parametrize(("version", "split"), [("11.8", False), ("12.0", False), ("12.1", True), ("13.0", True)])
def test_nvrtc_optimizes_in_parallel_where_it_can(version, split, monkeypatch):
    """``--split-compile`` exists from NVRTC 12.1 on; an older one would reject the compile."""
    monkeypatch.setattr(runtime, "nvrtc_version", lambda nvrtc: version)
    assert runtime.options(None) == (*runtime.OPTIONS, *(["--split-compile=0"] if split else []))


def test_an_unwritable_cache_is_skipped(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XLINALG_CACHE_DIR", str(blocker / "cache"))  # under a file: cannot be made
    monkeypatch.setattr(runtime, "nvrtc_version", lambda nvrtc: "13.0")
    monkeypatch.setattr(runtime, "compile_kernels", lambda arch, nvrtc: b"image")
    assert runtime.kernel_image("sm_90", None) == b"image"


# ---- parameters and grid ---------------------------------------------------------------------


def _arguments(entry, batch=123_456_789_012):
    """Distinct values for ``entry``'s parameters: ints, the batch (beyond 32 bits), doubles,
    pointers."""
    args = []
    for i, p in enumerate(entry.params):
        if p.name == "batch":
            args.append(batch)
        elif p.pointer:
            args.append(0x10000 * (i + 1))
        elif p.type == "double":
            args.append(0.25 + i)
        else:
            args.append(-(i + 1) if i % 2 else i + 1)
    return args


def _unpack(entry, array, layout="packed"):
    """The values behind a kernel parameter array, read as ``entry``'s parameter types."""
    return [ctypes.cast(array[i], ctypes.POINTER(p.ctype)).contents.value for i, p in enumerate(entry.parameters(layout))]


def _kernel_name(kernel: str) -> tuple[str, str, str]:
    """``(entry, suffix, layout)`` of a kernel's name (a fixed-order kernel's layout: packed)."""
    kernel = re.sub(r"_n\d+$", "", kernel)
    layout = next((lay for lay, tail in LAYOUTS.items() if tail and kernel.endswith(tail)), "packed")
    name, suffix = kernel[len("xl_kernel_") : len(kernel) - len(LAYOUTS[layout])].rsplit("_", 1)
    return name, suffix, layout


@pytest.mark.parametrize("name", list(entries()))
def test_pack_follows_entries_def(name):
    entry = entries()[name]
    args = _arguments(entry)
    values, array = runtime.pack(entry, args)
    assert [type(v) for v in values] == [p.ctype for p in entry.params]
    assert len(array) == len(entry.params) and list(array) == [ctypes.addressof(v) for v in values]
    assert _unpack(entry, array) == args
    assert isinstance(values[entry.batch_index], ctypes.c_int64) and values[entry.batch_index].value == 123_456_789_012
    assert sum(isinstance(v, ctypes.c_int64) for v in values) == 1
    kept, array = runtime.pack(entry, [p.ctype(a) for p, a in zip(entry.params, args)])  # ctypes values
    assert _unpack(entry, array) == args
    with pytest.raises(TypeError):
        runtime.pack(entry, args[:-1])


@pytest.mark.parametrize("batch, blocks", [(0, 0), (1, 1), (63, 1), (64, 1), (65, 2), (64 * 65535, 65535), (64 * 65535 + 1, 65535), (10**12, 65535)])
def test_grid(batch, blocks):
    assert runtime.blocks(batch) == blocks


def test_grid_rejects_a_negative_batch():
    with pytest.raises(ValueError):
        runtime.blocks(-1)


class FakeDriver:
    """A stand-in for :class:`runtime.Driver`: records launches (decoding their parameters during
    the call) and runs each "kernel" as the entry's CPU build on host memory when ``run``."""

    def __init__(self, run=False, fail=None):
        self.run, self.fail = run, fail or {}
        self.current, self.made_current, self.loaded, self.launches, self.asked = None, [], [], [], []
        self.context = "the caller's context"  # the thread's current context, as set_context sees it

    def current_context(self):
        return self.fail.get("current_context", 0), self.context

    def set_context(self, context):
        self.context = context
        self.current = context[1] if isinstance(context, tuple) else None
        return self.fail.get("set_context", 0)

    def shared_limit(self, index):
        self.asked.append(index)
        return 65536 * (index + 1)

    def make_current(self, index):
        self.made_current.append(index)
        self.current, self.context = index, ("primary", index)
        return self.fail.get("make_current", 0)

    def kernels(self, image, names):
        self.loaded.append((self.current, image))
        return self.fail.get("kernels", 0), {name: ("handle", self.current, name) for name in names}

    def launch(self, function, blocks, threads, stream, parameters, shared=0, allowed=0):
        _, device, kernel = function
        if shared:  # the most any staged launch of the kernel takes on the device
            assert allowed == min(rules.STAGE_MAX_BYTES, 65536 * (device + 1))  # (shared_limit, not asked again)
        name, suffix, layout = _kernel_name(kernel)
        entry = entries()[name]
        args = _unpack(entry, parameters, layout)
        launch = {"device": device, "kernel": kernel, "blocks": blocks, "threads": threads, "stream": stream, "args": args}
        self.launches.append({**launch, "shared": shared} if layout == "staged" else launch)
        if self.run:  # only with the arguments' layout checked: a wrong one would crash the CPU build
            if layout != "staged":
                assert blocks == runtime.blocks(args[entry.batch_index]), "the decoded batch does not match the grid"
            rules.host_entries().function(name, suffix, layout)(*args)
        return self.fail.get("launch", 0)

    def error_name(self, status):
        return f"FAKE_ERROR_{status}"

    def error_string(self, status):
        return f"fake error {status}"


@pytest.mark.parametrize("batch, blocks, block_blocks", [(1, 1, 1), (64, 1, 64), (65, 2, 65), (64 * 65535 + 1, 65535, 65535)])
@pytest.mark.parametrize("name", list(entries()))
def test_entries_launch_with_the_library_grid(name, batch, blocks, block_blocks):
    """A thread per batch entry in blocks of 64 (launch.cu's kBlock), or a block of 128 per batch
    entry for the block entries (block.h's kBlockThreads); at most 65 535 blocks."""
    driver = FakeDriver()
    ents = runtime.RuntimeEntries(driver, lambda index: b"image %d" % index)
    assert ents.stream is True
    entry = entries()[name]
    args = _arguments(entry, batch)
    assert ents.function(name, "f64")(*args, 0xABC) == 0
    (launch,) = driver.launches
    grid = {"blocks": block_blocks, "threads": 128} if entry.block else {"blocks": blocks, "threads": 64}
    kernel = entry.fixed_kernel("f64", args[[p.name for p in entry.params].index("n")]) if entry.fixed else None
    assert launch == {"device": 0, "kernel": kernel or entry.kernel("f64"), **grid, "stream": 0xABC, "args": args}
    assert driver.loaded == [(0, b"image 0")]


@pytest.mark.parametrize(
    ("suffix", "n", "fixed"),
    [("f32", 1, True), ("f32", 8, True), ("f32", 16, True), ("f32", 17, False), ("f32", 0, False), ("f64", 12, True), ("f64", 13, False)],
)
@pytest.mark.parametrize("name", ["potrf", "potrf_vjp"])
def test_packed_launches_of_fixed_entries_run_the_kernel_of_their_order(name, suffix, n, fixed):
    """As the CUDA library's packed entry: the kernel compiled for order n (fixed.h) where the
    entry has one (orders 1 to 16 in float32, 12 in float64), else the run-time-order kernel;
    the other layouts run their own kernel at every order."""
    driver = FakeDriver()
    ents = runtime.RuntimeEntries(driver, lambda index: b"image")
    entry = entries()[name]
    assert entry.fixed
    args = _arguments(entry, batch=5)
    args[[p.name for p in entry.params].index("n")] = n
    for layout in LAYOUTS:
        extra = [2 * n * n + 1] if layout == "staged" else []
        assert ents.function(name, suffix, layout)(*args, *extra, None) == 0
    packed, interleaved, staged = (launch["kernel"] for launch in driver.launches)
    assert packed == (f"xl_kernel_{name}_{suffix}_n{n}" if fixed else f"xl_kernel_{name}_{suffix}")
    assert (interleaved, staged) == (entry.kernel(suffix, "interleaved"), entry.kernel(suffix, "staged"))


@pytest.mark.parametrize(
    ("suffix", "stage", "batch", "grid"),
    [
        ("f32", 2 * 8 * 8 + 1, 1000, (16, 64, 2 * 17028)),  # 129 · 33 · 4 bytes a group: two fit in 48 KiB
        ("f32", 2 * 4 * 4 + 1, 1000, (8, 128, 4 * 4356)),  # eleven would: at most four warps a block
        ("f64", 2 * 8 * 8 + 1, 100, (4, 32, 34056)),  # 129 · 33 · 8: one warp a block
        ("f32", 400, 33, (2, 32, 52800)),  # above 48 KiB: one warp, its area asked for
        ("f32", 0, 10**12, (65535, 128, 0)),  # at most 65 535 blocks
    ],
)
def test_staged_entries_launch_with_the_library_grid(suffix, stage, batch, grid):
    """A group of 32 entries per warp, as many warps per block (up to four) as have their staging
    areas in 48 KiB, else one; the areas' bytes of dynamic shared memory."""
    driver = FakeDriver()
    ents = runtime.RuntimeEntries(driver, lambda index: b"image")
    entry = entries()["potrf"]
    args = [*_arguments(entry, batch), stage]
    assert ents.function("potrf", suffix, "staged")(*args, None) == 0
    (launch,) = driver.launches
    assert (launch["blocks"], launch["threads"], launch["shared"]) == grid
    assert launch["kernel"] == entry.kernel(suffix, "staged") and launch["args"] == args
    too_large = rules.STAGE_MAX_BYTES // ((rules.STAGE_GROUP | 1) * (4 if suffix == "f32" else 8)) + 1
    assert ents.function("potrf", suffix, "staged")(*_arguments(entry, batch), too_large, None) == 1  # CUDA_ERROR_INVALID_VALUE
    assert len(driver.launches) == 1


def test_the_shared_memory_limit_is_asked_once_per_device():
    driver = FakeDriver()
    ents = runtime.RuntimeEntries(driver, lambda index: b"image")
    assert ents.shared_limit() == 65536 and ents.shared_limit(0) == 65536  # device 0 when none is named
    assert ents.shared_limit(2) == 3 * 65536 and ents.shared_limit(2) == 3 * 65536
    assert driver.asked == [0, 2]


def test_the_driver_reads_the_shared_memory_limit():
    """``CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN`` (97) of the device."""
    calls = []

    def attribute(value, attr, device):
        calls.append((attr, device.value))
        value._obj.value = 232448
        return 0

    def device_get(device, index):
        device._obj.value = 10 + index
        return 0

    lib = type("FakeLibcuda", (), {})()
    for name in ("cuInit", "cuDriverGetVersion", "cuDeviceGetCount", "cuDevicePrimaryCtxRetain", "cuCtxGetCurrent", "cuCtxSetCurrent", "cuModuleLoadData",
                 "cuModuleGetFunction", "cuLaunchKernel", "cuFuncSetAttribute", "cuGetErrorName", "cuGetErrorString"):  # fmt: skip
        setattr(lib, name, lambda *args: 0)
    lib.cuDeviceGet, lib.cuDeviceGetAttribute = device_get, attribute
    assert runtime.Driver(lib).shared_limit(1) == 232448 and calls == [(97, 11)]


def test_the_driver_asks_for_shared_memory_beyond_48_kib():
    """``Driver.launch`` raises a kernel's dynamic shared memory limit
    (``cuFuncSetAttribute``) before a launch that needs more than a block has without asking, to
    the most it is allowed (the same for every launch), and passes its error on."""
    calls = []

    def recorder(name, status=0):
        return lambda *args: calls.append((name, *args)) or status

    lib = type("FakeLibcuda", (), {})()
    for name in ("cuInit", "cuDriverGetVersion", "cuDeviceGetCount", "cuDeviceGet", "cuDeviceGetAttribute", "cuDevicePrimaryCtxRetain",
                 "cuCtxGetCurrent", "cuCtxSetCurrent", "cuModuleLoadData", "cuModuleGetFunction", "cuLaunchKernel", "cuFuncSetAttribute",
                 "cuGetErrorName", "cuGetErrorString"):  # fmt: skip
        setattr(lib, name, recorder(name))
    driver = runtime.Driver(lib)
    assert driver.launch("kernel", 2, 32, "stream", "parameters", 49152) == 0
    assert calls == [("cuLaunchKernel", "kernel", 2, 1, 1, 32, 1, 1, 49152, "stream", "parameters", None)]
    calls.clear()
    assert driver.launch("kernel", 2, 32, "stream", "parameters", 52800, 98304) == 0
    assert calls == [("cuFuncSetAttribute", "kernel", 8, 98304), ("cuLaunchKernel", "kernel", 2, 1, 1, 32, 1, 1, 52800, "stream", "parameters", None)]
    calls.clear()
    assert driver.launch("kernel", 2, 32, "stream", "parameters", 52800) == 0  # nothing allowed beyond: its own size
    assert calls[0] == ("cuFuncSetAttribute", "kernel", 8, 52800)
    calls.clear()
    lib.cuFuncSetAttribute = recorder("cuFuncSetAttribute", 1)
    assert runtime.Driver(lib).launch("kernel", 2, 32, "stream", "parameters", 52800) == 1 and calls == [("cuFuncSetAttribute", "kernel", 8, 52800)]


def test_empty_and_negative_batches_launch_nothing():
    driver = FakeDriver()
    ents = runtime.RuntimeEntries(driver, lambda index: b"image")
    for entry in entries().values():
        for suffix in DTYPES:
            function = ents.function(entry.name, suffix)
            assert function(*_arguments(entry, 0), None) == 0
            assert function(*_arguments(entry, -1), None) == 1  # CUDA_ERROR_INVALID_VALUE
            with pytest.raises(TypeError):
                function(*_arguments(entry, 1))  # no stream
    assert driver.launches == [] and driver.loaded == []


def test_devices_contexts_and_errors():
    driver = FakeDriver()
    images = []
    ents = runtime.RuntimeEntries(driver, lambda index: images.append(index) or b"image")
    potrf = ents.function("potrf", "f32")
    with ents.on_device(None):
        assert driver.made_current == []
    with ents.on_device(1):
        assert potrf(*_arguments(entries()["potrf"], 3), None) == 0
        with ents.on_device(0):
            assert potrf(*_arguments(entries()["potrf"], 3), None) == 0
        assert driver.context == ("primary", 1)  # the enclosing device again
        assert potrf(*_arguments(entries()["potrf"], 3), None) == 0
    assert driver.context == "the caller's context"  # as it was before
    assert potrf(*_arguments(entries()["potrf"], 3), None) == 0  # outside on_device: device 0, and back
    assert driver.context == "the caller's context"
    assert [launch["device"] for launch in driver.launches] == [1, 0, 1, 0] and images == [1, 0]  # one module per device
    with pytest.raises(KeyError), ents.on_device(1):
        raise KeyError("inside")
    assert driver.context == "the caller's context"  # back after an error too
    driver.fail["launch"] = 719
    assert potrf(*_arguments(entries()["potrf"], 3), None) == 719
    driver.fail["make_current"] = 101
    with pytest.raises(RuntimeError, match=r"cuCtxSetCurrent \(device 2\) failed: FAKE_ERROR_101 \(fake error 101\)"):
        with ents.on_device(2):
            pass
    del driver.fail["make_current"]
    driver.fail["set_context"] = 201
    with pytest.raises(RuntimeError, match=r"cuCtxSetCurrent \(the caller's context\) failed: FAKE_ERROR_201"):
        with ents.on_device(2):
            pass
    failing = runtime.RuntimeEntries(FakeDriver(fail={"kernels": 218}), lambda index: b"image")
    assert failing.function("syevd", "f64")(*_arguments(entries()["syevd"], 3), None) == 218
    assert failing.describe(218) == "FAKE_ERROR_218 (fake error 218)"


@pytest.mark.skipif(lapack.library() is None, reason="compiled kernel layer not active")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rules_run_through_the_runtime_entries(dtype):
    """potrf and its VJP through :func:`rules.runner` with :class:`RuntimeEntries` whose stand-in
    driver runs the CPU build: the same results as the CPU build itself, one launch each (of the
    kernels of order 5)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((70, 5, 5))
    a = (x @ x.transpose(0, 2, 1) + 5 * np.eye(5)).astype(dtype)
    a[3] = -np.eye(5)  # not positive definite
    op, params = operators()["potrf"], {"lower": True}
    driver = FakeDriver(run=True)
    ents = runtime.RuntimeEntries(driver, lambda index: b"image")
    results = []
    for entries_ in (ents, rules.host_entries()):
        (factor,), status = rules.runner(op, "forward", (a,), rules.NumpyArrays(), entries_)((a,), params=params)
        g = np.tril(np.ones_like(a))
        (ga,), _ = rules.runner(op, "vjp", (a, factor, g), rules.NumpyArrays(), entries_)((a,), (factor,), (g,), params=params)
        results.append((factor, status, ga))
    suffix = DTYPES_BY_NAME[dtype]
    assert [(launch["kernel"], launch["blocks"]) for launch in driver.launches] == [(f"xl_kernel_potrf_{suffix}_n5", 2), (f"xl_kernel_potrf_vjp_{suffix}_n5", 2)]
    for got, want in zip(*results):
        np.testing.assert_array_equal(got, want)
    assert results[0][1][3] != 0 and (np.delete(results[0][1], 3) == 0).all()


# ---- choosing the entries --------------------------------------------------------------------


def _driver_present() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def test_no_driver_means_no_entries_and_a_reason():
    if _driver_present():
        pytest.skip("a CUDA driver is installed")
    assert runtime.runtime_entries() is None
    assert "no CUDA driver" in runtime.runtime_reason() and "libcuda.so.1" in runtime.runtime_reason()
    assert runtime.state().startswith("not available (no CUDA driver")
    assert cuda.config()["runtime"] == runtime.state()
    assert runtime.describe(100) == "CUresult 100"


@pytest.fixture
def fresh(monkeypatch):
    """The run-time build and the choice of entries undecided (``XLINALG_KERNELS=auto``), and
    decided again afterwards."""
    monkeypatch.setattr(runtime, "_state", {})
    monkeypatch.setitem(lapack._state, "mode", "auto")
    rules.library_entries.cache_clear()
    yield
    rules.library_entries.cache_clear()


class FakeDriverAPI(FakeDriver):
    """A stand-in driver for :func:`runtime.runtime_entries`: ``count`` devices of capability 9.0."""

    def __init__(self, count=1, **kwargs):
        super().__init__(**kwargs)
        self.count = count

    def device_count(self):
        return self.count

    def capability(self, index):
        return 90

    def version(self):
        return "13.0"


def _raise(exc):
    raise exc


class _FakeNvrtc:
    def __init__(self, version):
        self.version = version

    def nvrtcVersion(self, major, minor):
        major._obj.value, minor._obj.value = (int(x) for x in self.version.split("."))
        return 0


@pytest.mark.parametrize(
    "found, driver, chosen",
    [
        (["13.0", "12.8", "12.4"], "12.6", "12.4"),  # the newest the driver runs
        (["12.4", "12.8", "13.0"], "13.0", "13.0"),
        (["12.4", "12.8", "13.0"], "12.9", "12.8"),
        (["13.1", "13.0"], "12.8", "13.0"),  # none: the oldest, the nearest the driver
        (["13.1", "12.8"], None, "13.1"),  # no driver's version: the first found
        ([], "13.0", None),
    ],
)
def test_nvrtc_is_the_newest_the_driver_runs(monkeypatch, found, driver, chosen):
    """Of several NVRTCs (a wheel's, a toolkit's), the newest whose version is at most the
    driver's: a newer one makes code that driver may not load."""
    libs = {Path(f"/nvrtc/{version}/libnvrtc.so"): _FakeNvrtc(version) for version in found}
    monkeypatch.setattr(runtime, "_nvrtc_candidates", lambda: list(libs))
    monkeypatch.setattr(runtime, "_load_nvrtc", lambda path: libs[path])
    runtime.nvrtc_library.cache_clear()
    try:
        lib = runtime.nvrtc_library(driver)
    finally:
        runtime.nvrtc_library.cache_clear()
    assert (lib and lib.version) == chosen


NVRTC = object()


def _fake_runtime(monkeypatch, driver, nvrtc=NVRTC, image=lambda arch, nvrtc: b"image " + arch.encode()):
    monkeypatch.setattr(runtime.Driver, "load", classmethod(lambda cls: driver))
    monkeypatch.setattr(runtime, "nvrtc_library", lambda driver=None: nvrtc if driver == "13.0" else pytest.fail(f"NVRTC for driver {driver}"))
    monkeypatch.setattr(runtime, "nvrtc_version", lambda nvrtc: "13.0")
    monkeypatch.setattr(runtime, "target", lambda capability, nvrtc: f"sm_{capability}")
    monkeypatch.setattr(runtime, "kernel_image", image)


def test_runtime_entries_with_a_driver_and_nvrtc(fresh, monkeypatch):
    driver = FakeDriverAPI()
    _fake_runtime(monkeypatch, driver)
    monkeypatch.setattr(cuda, "library", lambda: None)
    assert runtime.state() == "available (NVRTC 13.0, driver 13.0, 1 device(s); compiled on first use)"
    ents = runtime.runtime_entries()
    assert isinstance(ents, runtime.RuntimeEntries) and runtime.runtime_reason() is None
    assert driver.loaded == [(0, b"image sm_90")]  # compiled and loaded for device 0 up front
    assert runtime.state() == "active (sm_90, NVRTC 13.0)"
    assert rules.cuda_entries(0) is ents
    with pytest.raises(RuntimeError, match=r"xlinalg.cuda: potrf_f32 failed: FAKE_ERROR_719 \(fake error 719\)"):
        ents.check(719, "potrf_f32")  # named by the driver
    monkeypatch.setitem(lapack._state, "mode", "python")
    assert rules.cuda_entries(0) is None


@pytest.mark.parametrize(
    "setup, reason",
    [
        ({"driver": FakeDriverAPI(count=0)}, "finds no device"),
        ({"nvrtc": None}, "no NVRTC library"),
        ({"image": lambda arch, nvrtc: _raise(RuntimeError("NVRTC failed to compile"))}, "NVRTC failed to compile"),
        ({"driver": FakeDriverAPI(fail={"kernels": 222})}, "do not load: FAKE_ERROR_222"),
        ({"driver": FakeDriverAPI(fail={"make_current": 101})}, "cuCtxSetCurrent"),
        ({"image": lambda arch, nvrtc: 1 / 0}, "ZeroDivisionError"),
    ],
)
def test_runtime_entries_failures_leave_none_and_a_reason(fresh, monkeypatch, setup, reason):
    setup = dict(setup)
    _fake_runtime(monkeypatch, setup.pop("driver", FakeDriverAPI()), **setup)
    monkeypatch.setattr(cuda, "library", lambda: None)
    assert runtime.runtime_entries() is None
    assert reason in runtime.runtime_reason()
    assert runtime.state().startswith("not available (")
    assert rules.cuda_entries(0) is None


def test_the_library_comes_first(fresh, monkeypatch):
    """With the CUDA library loaded and a device usable, its entries, and no run-time build."""
    if cuda.library() is None:
        pytest.skip(f"the CUDA library is not loaded: {cuda.unavailable_reason()}")
    monkeypatch.setattr(cuda, "device_count", lambda: 1)
    monkeypatch.setattr(rules.CudaEntries, "runs_on", lambda self, index: True)
    monkeypatch.setattr(runtime, "runtime_entries", lambda: pytest.fail("the run-time build was tried"))
    ents = rules.cuda_entries(0)
    assert isinstance(ents, rules.CudaEntries)
    with pytest.raises(RuntimeError, match=r"cudaErrorNoDevice"):
        ents.check(100, "potrf_f32")  # named by the CUDA library


def test_a_device_without_the_librarys_code_gets_the_run_time_build(fresh, monkeypatch):
    """A GPU older than every architecture the library was built for (a T4 for the default
    sm_80/sm_90 build) runs the kernels NVRTC compiles for it; the others the library's."""
    if cuda.library() is None:
        pytest.skip(f"the CUDA library is not loaded: {cuda.unavailable_reason()}")
    monkeypatch.setattr(cuda, "device_count", lambda: 2)
    monkeypatch.setattr(rules.CudaEntries, "runs_on", lambda self, index: index == 0)
    compiled = object()
    monkeypatch.setattr(runtime, "runtime_entries", lambda: compiled)
    assert isinstance(rules.cuda_entries(0), rules.CudaEntries)
    assert rules.cuda_entries(1) is compiled
    assert rules.cuda_entries(0) is rules.library_entries()  # one object: its per-device facts


def test_python_mode_has_no_cuda_entries(monkeypatch):
    monkeypatch.setitem(lapack._state, "mode", "python")
    assert rules.cuda_entries(0) is None


# ---- on a GPU ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_potrf_on_a_gpu(dtype):
    """potrf through the run-time build on torch CUDA tensors, on a side stream, against the CPU
    build (a failing entry included)."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    if lapack.library() is None:
        pytest.skip("compiled kernel layer not active")
    if runtime.nvrtc_library() is None:
        pytest.skip("no NVRTC library")
    ents = runtime.runtime_entries()
    assert ents is not None, runtime.runtime_reason()
    from xlinalg.kernels.torch import TorchArrays

    rng = np.random.default_rng(1)
    x = rng.standard_normal((1000, 8, 8))
    a = (x @ x.transpose(0, 2, 1) + 8 * np.eye(8)).astype(dtype)
    a[7] = -np.eye(8)
    op, params = operators()["potrf"], {"lower": True}
    (want,), want_status = rules.runner(op, "forward", (a,), rules.NumpyArrays(), rules.host_entries())((a,), params=params)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        device = torch.from_numpy(a).cuda()
        (factor,), status = rules.runner(op, "forward", (device,), TorchArrays(), ents)((device,), params=params)
    stream.synchronize()
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_array_equal(status.cpu().numpy(), want_status)
    np.testing.assert_allclose(factor.cpu().numpy(), want, rtol=tol, atol=tol, equal_nan=True)
