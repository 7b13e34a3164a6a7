"""The GPU kernels built at run time: NVRTC and the CUDA driver API, for machines with a driver
but no CUDA toolkit.

``src/kernels.cuh`` compiles with NVRTC (:func:`nvrtc_library` finds one: the
``nvidia-cuda-nvrtc`` wheel's, a CUDA toolkit's or the system's) for the device's compute
capability, to a CUBIN (to PTX for a device newer than NVRTC knows, which the driver compiles
on load). The result is kept under :func:`xlinalg.lapack.build.cache_dir`, keyed by the sources
(:func:`xlinalg.cuda.sources.sources_id`), the target and NVRTC's version, so that a machine
compiles once. The driver (``libcuda.so.1``, through ctypes) loads it in each device's primary
context, the one the CUDA runtime and so torch, CuPy and JAX use, whose streams are then valid
for the kernels.

:func:`runtime_entries` gives :class:`RuntimeEntries`, the entries of ``entries.def`` with the
CUDA library's signatures (``params..., stream``, returning a ``CUresult``) and launch policy,
or ``None`` (:func:`runtime_reason` says why). Nothing here raises for a missing driver, NVRTC
or device, or a failed compile.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import importlib.util
import os
import tempfile
import threading
from functools import cache
from pathlib import Path

from . import rules
from .entries import DTYPES, entries, fixed_max_order
from .sources import SOURCE_DIR, constant, sources_id

#: Threads per block and blocks per launch at most: the CUDA library's (``src/launch.cu``).
BLOCK = 64
MAX_BLOCKS = 65535
#: Threads per block of the block entries (``kBlockThreads`` of ``src/block.h``).
BLOCK_ENTRY_THREADS = constant("kBlockThreads", "block.h")
#: Staged launches: warps per block at most, and the shared memory a block has without asking
#: for more (``kStageWarps``, ``kStageBlockBytes`` of ``src/per_matrix.h``).
STAGE_WARPS = constant("kStageWarps", "per_matrix.h")
STAGE_BLOCK_BYTES = constant("kStageBlockBytes", "per_matrix.h")
#: ``CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES``.
MAX_DYNAMIC_SHARED = 8
#: NVRTC's options besides the target.
OPTIONS = ("--std=c++17", f"-I{SOURCE_DIR}")
#: and from NVRTC 12.1 on: optimize the kernels in parallel, on every CPU (the fully unrolled
#: fixed-order kernels make most of the compile: 100 s on two cores for sm_90 without it, half
#: with it)
SPLIT_COMPILE = "--split-compile=0"
#: ``CUDA_ERROR_INVALID_VALUE``: a negative batch.
INVALID_VALUE = 1
#: ``CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR`` and ``_MINOR``.
_CAPABILITY_MAJOR, _CAPABILITY_MINOR = 75, 76
#: ``CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN``.
_SHARED_OPTIN = 97

_state: dict = {}
_lock = threading.Lock()


# ---- NVRTC ---------------------------------------------------------------------------------------


def _nvrtc_candidates() -> list[Path]:
    candidates = []
    spec = importlib.util.find_spec("nvidia")
    for base in spec.submodule_search_locations if spec is not None and spec.submodule_search_locations else ():
        candidates += sorted(Path(base).glob("cu*/lib/libnvrtc.so*")) + sorted(Path(base).glob("cuda_nvrtc/lib/libnvrtc.so*"))
    for home in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if home:
            candidates += sorted(Path(home, "lib64").glob("libnvrtc.so*"))
    found = ctypes.util.find_library("nvrtc")
    candidates += [Path(found)] if found else []
    return [path for path in candidates if "builtins" not in path.name and "alt" not in path.name]


@cache
def nvrtc_library(driver: str | None = None) -> ctypes.CDLL | None:
    """A loadable NVRTC library with its functions' prototypes set, or ``None``.

    Searched in the ``nvidia-cuda-nvrtc`` wheel (``nvidia/cu*/lib``, ``nvidia/cuda_nvrtc/lib``),
    ``$CUDA_HOME/lib64``, ``/usr/local/cuda/lib64``, then the system's library path. The
    ``libnvrtc-builtins`` beside it, which NVRTC opens by name, is loaded first. Without
    ``driver`` the first found; with the driver's CUDA version (``"12.4"``), the newest found
    whose version is at most the driver's (a newer NVRTC makes code that driver may not load),
    else the oldest found (the nearest the driver). Found once per ``driver``.
    """
    versions = {}  # each library found: its version
    for path in _nvrtc_candidates():
        lib = _load_nvrtc(path)
        if lib is not None and driver is None:
            return lib
        if lib is not None:
            versions[lib] = _numbers(nvrtc_version(lib))
    fitting = [lib for lib in versions if versions[lib] <= _numbers(driver)]
    if fitting:
        return max(fitting, key=versions.get)
    return min(versions, key=versions.get) if versions else None


def _load_nvrtc(path: Path) -> ctypes.CDLL | None:
    try:
        for builtins in sorted(path.parent.glob("libnvrtc-builtins.so*")):
            if "alt" not in builtins.name:
                ctypes.CDLL(str(builtins), mode=ctypes.RTLD_GLOBAL)
        lib = ctypes.CDLL(str(path))
        _nvrtc_prototypes(lib)
        return lib
    except (OSError, AttributeError):
        return None


def _numbers(version: str) -> tuple[int, ...]:
    """``"12.4"`` as ``(12, 4)``."""
    return tuple(int(part) for part in version.split("."))


def _nvrtc_prototypes(lib: ctypes.CDLL) -> None:
    p, size, integer = ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_int)
    prototypes = {
        "nvrtcVersion": [integer, integer],
        "nvrtcCreateProgram": [ctypes.POINTER(p), ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_char_p)],
        "nvrtcCompileProgram": [p, ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)],
        "nvrtcDestroyProgram": [ctypes.POINTER(p)],
        "nvrtcGetProgramLogSize": [p, size],
        "nvrtcGetProgramLog": [p, ctypes.c_char_p],
        "nvrtcGetPTXSize": [p, size],
        "nvrtcGetPTX": [p, ctypes.c_char_p],
    }
    optional = {  # newer than NVRTC 11.0
        "nvrtcGetCUBINSize": [p, size],
        "nvrtcGetCUBIN": [p, ctypes.c_char_p],
        "nvrtcGetNumSupportedArchs": [integer],
        "nvrtcGetSupportedArchs": [integer],
    }
    for name, argtypes in {**prototypes, **optional}.items():
        if name in optional and not hasattr(lib, name):
            continue
        function = getattr(lib, name)
        function.restype, function.argtypes = ctypes.c_int, argtypes
    lib.nvrtcGetErrorString.restype, lib.nvrtcGetErrorString.argtypes = ctypes.c_char_p, [ctypes.c_int]


def nvrtc_version(nvrtc: ctypes.CDLL) -> str:
    """NVRTC's version, ``"13.0"``."""
    major, minor = ctypes.c_int(), ctypes.c_int()
    nvrtc.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    return f"{major.value}.{minor.value}"


def options(nvrtc: ctypes.CDLL) -> tuple[str, ...]:
    """NVRTC's options besides the target for this NVRTC: :data:`OPTIONS`, and
    :data:`SPLIT_COMPILE` where its version is 12.1 or later."""
    return (*OPTIONS, SPLIT_COMPILE) if _numbers(nvrtc_version(nvrtc)) >= (12, 1) else OPTIONS


def target(capability: int, nvrtc: ctypes.CDLL) -> str:
    """NVRTC's target for a device of compute capability ``capability`` (90 for 9.0):
    ``"sm_<capability>"`` (a CUBIN) where NVRTC knows the architecture and gives CUBINs, else
    ``"compute_<c>"`` (PTX) for the newest architecture ``c`` it knows at most ``capability``.

    Raises
    ------
    RuntimeError
        When NVRTC knows no architecture up to ``capability``.
    """
    cubin = hasattr(nvrtc, "nvrtcGetCUBIN")
    if not hasattr(nvrtc, "nvrtcGetSupportedArchs"):
        return f"{'sm' if cubin else 'compute'}_{capability}"
    count = ctypes.c_int()
    nvrtc.nvrtcGetNumSupportedArchs(ctypes.byref(count))
    archs = (ctypes.c_int * count.value)()
    nvrtc.nvrtcGetSupportedArchs(archs)
    known = [a for a in archs if a <= capability]
    if not known:
        raise RuntimeError(f"NVRTC {nvrtc_version(nvrtc)} compiles for architectures {list(archs)}, none up to the device's {capability}")
    if cubin and capability in known:
        return f"sm_{capability}"
    return f"compute_{max(known)}"


def compile_kernels(arch: str, nvrtc: ctypes.CDLL) -> bytes:
    """``kernels.cuh`` compiled by NVRTC for ``arch``: a CUBIN for ``"sm_XY"``, PTX (with its
    terminating NUL, as the driver loads it) for ``"compute_XY"``.

    Raises
    ------
    RuntimeError
        When the compile fails (with NVRTC's log).
    """
    program = ctypes.c_void_p()
    source = (SOURCE_DIR / "kernels.cuh").read_bytes()
    status = nvrtc.nvrtcCreateProgram(ctypes.byref(program), source, b"kernels.cu", 0, None, None)
    if status:
        raise RuntimeError(f"nvrtcCreateProgram failed: {nvrtc.nvrtcGetErrorString(status).decode()}")
    try:
        flags = [o.encode() for o in (*options(nvrtc), f"--gpu-architecture={arch}")]
        status = nvrtc.nvrtcCompileProgram(program, len(flags), (ctypes.c_char_p * len(flags))(*flags))
        if status:
            size = ctypes.c_size_t()
            nvrtc.nvrtcGetProgramLogSize(program, ctypes.byref(size))
            log = ctypes.create_string_buffer(size.value + 1)
            nvrtc.nvrtcGetProgramLog(program, log)
            text = log.value.decode(errors="replace")[-4000:]
            raise RuntimeError(f"NVRTC failed to compile kernels.cuh for {arch} ({nvrtc.nvrtcGetErrorString(status).decode()}):\n{text}")
        get_size, get = (nvrtc.nvrtcGetCUBINSize, nvrtc.nvrtcGetCUBIN) if arch.startswith("sm_") else (nvrtc.nvrtcGetPTXSize, nvrtc.nvrtcGetPTX)
        size = ctypes.c_size_t()
        get_size(program, ctypes.byref(size))
        image = ctypes.create_string_buffer(size.value)
        if size.value == 0 or get(program, image):
            raise RuntimeError(f"NVRTC gave no {'CUBIN' if arch.startswith('sm_') else 'PTX'} for {arch}")
        return image.raw
    finally:
        nvrtc.nvrtcDestroyProgram(ctypes.byref(program))


def cache_path(arch: str, nvrtc: ctypes.CDLL) -> Path:
    """Where the kernels compiled for ``arch`` are kept: ``cuda-kernels-<sources>-<arch>-nvrtc<version>-
    <options>.<cubin|ptx>`` under :func:`xlinalg.lapack.build.cache_dir`."""
    from ..lapack.build import cache_dir

    flags = hashlib.sha256("\0".join(options(nvrtc)).encode()).hexdigest()[:8]
    suffix = "cubin" if arch.startswith("sm_") else "ptx"
    return cache_dir() / f"cuda-kernels-{sources_id()}-{arch}-nvrtc{nvrtc_version(nvrtc)}-{flags}.{suffix}"


def kernel_image(arch: str, nvrtc: ctypes.CDLL) -> bytes:
    """The kernels for ``arch`` (:func:`compile_kernels`), from the cache when it holds them,
    else compiled and written to it (a temporary file renamed into place; a cache that cannot
    be written is skipped).

    Raises
    ------
    RuntimeError
        When the compile fails.
    """
    path = cache_path(arch, nvrtc)
    try:
        image = path.read_bytes()
        if image:
            return image
    except OSError:
        pass
    image = compile_kernels(arch, nvrtc)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".partial")
    except OSError:
        return image
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(image)
        os.replace(partial, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(partial)
    return image


# ---- the driver ----------------------------------------------------------------------------------


class Driver:
    """The CUDA driver API (``libcuda.so.1``) through ctypes: the calls the run-time build
    makes. Every method returns or passes on a ``CUresult`` (0: success)."""

    def __init__(self, lib: ctypes.CDLL):
        p, integer = ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)
        prototypes = {
            "cuInit": [ctypes.c_uint],
            "cuDriverGetVersion": [integer],
            "cuDeviceGetCount": [integer],
            "cuDeviceGet": [integer, ctypes.c_int],
            "cuDeviceGetAttribute": [integer, ctypes.c_int, ctypes.c_int],
            "cuDevicePrimaryCtxRetain": [ctypes.POINTER(p), ctypes.c_int],
            "cuCtxGetCurrent": [ctypes.POINTER(p)],
            "cuCtxSetCurrent": [p],
            "cuModuleLoadData": [ctypes.POINTER(p), ctypes.c_char_p],
            "cuModuleGetFunction": [ctypes.POINTER(p), p, ctypes.c_char_p],
            "cuLaunchKernel": [p, *[ctypes.c_uint] * 7, p, ctypes.POINTER(p), ctypes.POINTER(p)],
            "cuFuncSetAttribute": [p, ctypes.c_int, ctypes.c_int],
            "cuGetErrorName": [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)],
            "cuGetErrorString": [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)],
        }
        for name, argtypes in prototypes.items():
            function = getattr(lib, name)
            function.restype, function.argtypes = ctypes.c_int, argtypes
        self.lib = lib
        self._contexts: dict[int, ctypes.c_void_p] = {}

    @classmethod
    def load(cls) -> Driver:
        """The driver, initialized (``cuInit``).

        Raises
        ------
        RuntimeError
            Without ``libcuda.so.1``, or when ``cuInit`` fails.
        """
        try:
            lib = ctypes.CDLL("libcuda.so.1")
        except OSError as exc:
            raise RuntimeError(f"no CUDA driver ({exc})") from None
        try:
            driver = cls(lib)
        except AttributeError as exc:
            raise RuntimeError(f"the CUDA driver lacks a function: {exc}") from None
        status = lib.cuInit(0)
        if status:
            raise RuntimeError(f"cuInit failed: {driver.error_name(status)}")
        return driver

    def error_name(self, status: int) -> str:
        """The ``CUresult``'s name (``"CUDA_ERROR_NO_DEVICE"``), or ``"CUresult <n>"``."""
        return self._text(self.lib.cuGetErrorName, status)

    def error_string(self, status: int) -> str:
        """The ``CUresult``'s description, or ``"CUresult <n>"``."""
        return self._text(self.lib.cuGetErrorString, status)

    @staticmethod
    def _text(function, status):
        text = ctypes.c_char_p()
        if function(status, ctypes.byref(text)) or text.value is None:
            return f"CUresult {status}"
        return text.value.decode()

    def version(self) -> str:
        """The driver's CUDA version, ``"13.0"``."""
        value = ctypes.c_int()
        self.lib.cuDriverGetVersion(ctypes.byref(value))
        return f"{value.value // 1000}.{value.value % 1000 // 10}"

    def device_count(self) -> int:
        """The number of devices (0 on an error)."""
        count = ctypes.c_int()
        return count.value if self.lib.cuDeviceGetCount(ctypes.byref(count)) == 0 else 0

    def capability(self, index: int) -> int:
        """The compute capability of device ``index`` as ``10 * major + minor``.

        Raises
        ------
        RuntimeError
            When the driver cannot tell.
        """
        device, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        status = (
            self.lib.cuDeviceGet(ctypes.byref(device), index)
            or self.lib.cuDeviceGetAttribute(ctypes.byref(major), _CAPABILITY_MAJOR, device)
            or self.lib.cuDeviceGetAttribute(ctypes.byref(minor), _CAPABILITY_MINOR, device)
        )
        if status:
            raise RuntimeError(f"the compute capability of device {index} is unknown: {self.error_name(status)}")
        return 10 * major.value + minor.value

    def shared_limit(self, index: int) -> int:
        """The dynamic shared memory (bytes) a block may ask for on device ``index``
        (``CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN``).

        Raises
        ------
        RuntimeError
            When the driver cannot tell.
        """
        device, value = ctypes.c_int(), ctypes.c_int()
        status = self.lib.cuDeviceGet(ctypes.byref(device), index) or self.lib.cuDeviceGetAttribute(ctypes.byref(value), _SHARED_OPTIN, device)
        if status:
            raise RuntimeError(f"the shared memory limit of device {index} is unknown: {self.error_name(status)}")
        return value.value

    def current_context(self) -> tuple[int, int | None]:
        """``(status, context)``: the calling thread's current context (``None``: none)."""
        context = ctypes.c_void_p()
        return self.lib.cuCtxGetCurrent(ctypes.byref(context)), context.value

    def set_context(self, context: int | None) -> int:
        """Make ``context`` (a value of :meth:`current_context`) current on the calling thread."""
        return self.lib.cuCtxSetCurrent(context)

    def make_current(self, index: int) -> int:
        """Make device ``index``'s primary context current on the calling thread (retained on
        first use, for the process's life)."""
        context = self._contexts.get(index)
        if context is None:
            device, context = ctypes.c_int(), ctypes.c_void_p()
            status = self.lib.cuDeviceGet(ctypes.byref(device), index) or self.lib.cuDevicePrimaryCtxRetain(ctypes.byref(context), device)
            if status:
                return status
            context = self._contexts.setdefault(index, context)
        return self.lib.cuCtxSetCurrent(context)

    def kernels(self, image: bytes, names) -> tuple[int, dict]:
        """Load ``image`` (a CUBIN or PTX) as a module of the current context and look up the
        kernels ``names``: ``(status, {name: CUfunction})``."""
        module = ctypes.c_void_p()
        status = self.lib.cuModuleLoadData(ctypes.byref(module), image)
        if status:
            return status, {}
        functions = {}
        for name in names:
            function = ctypes.c_void_p()
            status = self.lib.cuModuleGetFunction(ctypes.byref(function), module, name.encode())
            if status:
                return status, {}
            functions[name] = function
        return 0, functions

    def launch(self, function, blocks: int, threads: int, stream, parameters, shared: int = 0, allowed: int = 0) -> int:
        """``cuLaunchKernel`` of ``function`` on a one-dimensional grid with the parameter array
        ``parameters`` (the addresses of the arguments) and ``shared`` bytes of dynamic shared
        memory per block. More than :data:`STAGE_BLOCK_BYTES` is allowed first, as the CUDA
        library's launches do: ``allowed`` bytes (the most any launch of the kernel takes on the
        device: one value, so that threads launching it at once never lower it under another's
        size), or ``shared`` where that is more."""
        if shared > STAGE_BLOCK_BYTES:
            status = self.lib.cuFuncSetAttribute(function, MAX_DYNAMIC_SHARED, max(shared, allowed))
            if status:
                return status
        return self.lib.cuLaunchKernel(function, blocks, 1, 1, threads, 1, 1, shared, stream, parameters, None)


# ---- the entries ---------------------------------------------------------------------------------


def blocks(batch: int, block_entry: bool = False) -> int:
    """The blocks that run ``batch`` entries: of :data:`BLOCK` threads, one thread per entry, or
    (``block_entry``) one block of :data:`BLOCK_ENTRY_THREADS` per entry; at most
    :data:`MAX_BLOCKS` (the kernels' grid-stride loop covers the rest); 0 for an empty batch.

    Raises
    ------
    ValueError
        For a negative batch.
    """
    if batch < 0:
        raise ValueError(f"the batch size must not be negative, got {batch}")
    return min(batch if block_entry else -(-batch // BLOCK), MAX_BLOCKS)


def staged_grid(batch: int, capacity: int) -> tuple[int, int, int]:
    """``(blocks, threads, shared bytes per block)`` of a staged launch over ``batch`` entries
    whose groups take ``capacity`` bytes each (``launch.cu``: ``stage_warps`` warps per block,
    a group of :data:`~xlinalg.cuda.rules.STAGE_GROUP` entries per warp, at most
    :data:`MAX_BLOCKS` blocks)."""
    fit = STAGE_BLOCK_BYTES // capacity if capacity > 0 else STAGE_WARPS
    warps = min(max(fit, 1), STAGE_WARPS)
    per_block = warps * rules.STAGE_GROUP
    return min(-(-batch // per_block), MAX_BLOCKS), 32 * warps, warps * capacity


def geometry(entry, layout: str, batch: int, capacity: int = 0) -> tuple[int, int, int]:
    """``(blocks, threads, shared bytes per block)`` of the CUDA library's launch of ``entry``'s
    kernel in ``layout`` over ``batch`` entries (``capacity``: the bytes of a staged group):
    :func:`staged_grid`, else one block of :data:`BLOCK_ENTRY_THREADS` per entry for a block
    entry, else :data:`BLOCK` threads per block, one per entry (:func:`blocks`)."""
    if layout == "staged":
        return staged_grid(batch, capacity)
    return blocks(batch, entry.block), BLOCK_ENTRY_THREADS if entry.block else BLOCK, 0


def pack(entry, args, layout: str = "packed") -> tuple[list, ctypes.Array]:
    """The kernel parameters of ``entry`` (an :class:`xlinalg.cuda.entries.Entry`) in ``layout``
    for ``args``, its parameters' values in order (pointers as integers, ``None`` or
    ``c_void_p``).

    Returns
    -------
    values : list
        Each value in a ctypes object of its parameter's type (``c_int``, ``c_int64``,
        ``c_double``, ``c_void_p``); they must outlive the launch.
    array : ctypes.Array
        The ``void*`` array of their addresses that ``cuLaunchKernel`` takes.
    """
    params = entry.parameters(layout)
    if len(args) != len(params):
        raise TypeError(f"{entry.name} takes {len(params)} parameters, got {len(args)}")
    values = [p.ctype(_plain(a)) for p, a in zip(params, args)]
    return values, (ctypes.c_void_p * len(values))(*[ctypes.addressof(v) for v in values])


def _plain(value):
    """``value``'s Python value when it is a ctypes scalar (``c_int(3)``, ``c_void_p(...)``)."""
    return value.value if isinstance(value, ctypes._SimpleCData) else value


class _Launcher:
    """One entry for one dtype: called with the CUDA library's arguments (the parameters of
    ``entries.def``, then the stream), launches its kernel and returns the ``CUresult``."""

    def __init__(self, owner: RuntimeEntries, entry, suffix: str, layout: str):
        self._owner, self._entry, self._layout = owner, entry, layout
        self.kernel = entry.kernel(suffix, layout)
        self._itemsize = 4 if suffix == "f32" else 8
        #: a packed launch of a fixed-order entry: the position of the order ``n`` among the
        #: parameters and the kernel of each order that has one
        self._order, self._fixed = None, {}
        if entry.fixed and layout == "packed":
            self._order = [p.name for p in entry.params].index("n")
            self._fixed = {n: entry.fixed_kernel(suffix, n) for n in range(1, fixed_max_order(suffix) + 1)}

    def __call__(self, *args) -> int:
        if getattr(self._owner._local, "device", None) is None:  # called outside on_device(): device 0
            with self._owner.on_device(0):
                return self._launch(args)
        return self._launch(args)

    def _launch(self, args) -> int:
        entry, count = self._entry, len(self._entry.parameters(self._layout))
        if len(args) != count + 1:
            raise TypeError(f"{self.kernel} takes {count + 1} arguments (the parameters, then the stream), got {len(args)}")
        batch = int(_plain(args[entry.batch_index]))
        if batch < 0:
            return INVALID_VALUE
        if batch == 0:
            return 0
        capacity = 0
        if self._layout == "staged":
            capacity = rules.stage_capacity(int(_plain(args[-2])), self._itemsize)
            if not 0 <= capacity <= rules.STAGE_MAX_BYTES:
                return INVALID_VALUE
        grid, threads, shared = geometry(entry, self._layout, batch, capacity)
        kernel = self.kernel
        if self._order is not None:  # as the CUDA entry: the kernel of order n where there is one
            kernel = self._fixed.get(int(_plain(args[self._order])), kernel)
        status, function = self._owner._function(kernel)
        if status:
            return status
        allowed = min(rules.STAGE_MAX_BYTES, self._owner.shared_limit(self._owner._local.device)) if shared else 0
        values, array = pack(entry, args[:-1], self._layout)  # values: alive until the launch returns
        return self._owner.driver.launch(function, grid, threads, _plain(args[-1]), array, shared, allowed)


class RuntimeEntries(rules.Entries):
    """The kernels compiled at run time, as entries with the CUDA library's signatures.

    ``function(name, suffix, layout)`` takes the parameters of ``entries.def`` then the stream (a
    ``CUstream``/``cudaStream_t`` as an integer; ``None``: the default stream), launches
    ``xl_kernel_<name>_<suffix>...`` (packed, as the CUDA library: the kernel of order ``n``
    where the entry has one, :meth:`~xlinalg.cuda.entries.Entry.fixed_kernel`) with the CUDA
    library's grid (:data:`BLOCK` threads per
    block, or a block of :data:`BLOCK_ENTRY_THREADS` per batch entry for a block entry, or
    :func:`staged_grid`; at most :data:`MAX_BLOCKS` blocks) on the device of the enclosing
    :meth:`on_device` (device 0 outside one) and returns the ``CUresult``: 0 when queued, 0 for
    an empty batch (nothing launched), ``CUDA_ERROR_INVALID_VALUE`` for a negative one.

    Parameters
    ----------
    driver : Driver
        The driver API.
    image : callable
        ``image(index)``: the kernels (CUBIN or PTX) for device ``index``; called once per
        device, on its first launch. May raise ``RuntimeError``, which the launch passes on.
    """

    stream = True

    def __init__(self, driver: Driver, image):
        self.driver = driver
        self._image = image
        self._kernels: dict[int, dict] = {}  # device -> {kernel: CUfunction}
        self._limits: dict[int, int] = {}  # device -> shared_limit()
        self._lock = threading.Lock()
        self._local = threading.local()

    def function(self, name, suffix, layout="packed"):
        return _Launcher(self, entries()[name], suffix, layout)

    def on_device(self, index):
        """A context manager: device ``index``'s primary context current on the calling thread
        inside it (``None``: nothing changes), the caller's context again after it. Raises
        ``RuntimeError`` naming the driver's error when a context cannot be made current."""
        if index is None:
            return rules.NO_SWITCH
        return rules.DeviceGuard(lambda: self._switch(index), self._restore)

    def _switch(self, index):
        status, context = self.driver.current_context()
        if status:
            raise RuntimeError(f"xlinalg.cuda: cuCtxGetCurrent failed: {describe(status, self.driver)}")
        status = self.driver.make_current(index)
        if status:
            raise RuntimeError(f"xlinalg.cuda: cuCtxSetCurrent (device {index}) failed: {describe(status, self.driver)}")
        saved = (context, getattr(self._local, "device", None))
        self._local.device = index
        return saved

    def _restore(self, saved):
        context, self._local.device = saved
        status = self.driver.set_context(context)
        if status:
            raise RuntimeError(f"xlinalg.cuda: cuCtxSetCurrent (the caller's context) failed: {describe(status, self.driver)}")

    def describe(self, status: int) -> str:
        """A ``CUresult``'s name and description."""
        return describe(status, self.driver)

    def shared_limit(self, index=None) -> int:
        """:meth:`Driver.shared_limit` of device ``index`` (``None``: 0; asked once per device)."""
        index = 0 if index is None else index
        if index not in self._limits:
            self._limits[index] = self.driver.shared_limit(index)
        return self._limits[index]

    def _function(self, kernel: str):
        """``(status, CUfunction)`` of ``kernel`` on the device of the enclosing :meth:`on_device`."""
        index = self._local.device
        table = self._kernels.get(index)
        if table is None:
            with self._lock:
                table = self._kernels.get(index)
                if table is None:
                    names = [k for e in entries().values() for s in DTYPES for k in e.kernels(s)]
                    status, table = self.driver.kernels(self._image(index), names)
                    if status:
                        return status, None
                    self._kernels[index] = table
        return 0, table[kernel]


def describe(status: int, driver: Driver | None = None) -> str:
    """A ``CUresult``'s name and description (``"CUDA_ERROR_NO_DEVICE (no CUDA-capable device is
    detected)"``); ``"CUresult <n>"`` without a driver."""
    if driver is None:
        driver = _state.get("driver")
    if driver is None:
        return f"CUresult {status}"
    return f"{driver.error_name(status)} ({driver.error_string(status)})"


def _entries() -> tuple[RuntimeEntries | None, str | None]:
    try:
        driver = Driver.load()
    except RuntimeError as exc:
        return None, str(exc)
    _state["driver"] = driver
    if driver.device_count() == 0:
        return None, "the CUDA driver finds no device"
    nvrtc = nvrtc_library(driver.version())
    if nvrtc is None:
        return None, "no NVRTC library (pip install nvidia-cuda-nvrtc, or nvidia-cuda-nvrtc-cu12 for CUDA 12, or a CUDA toolkit with libnvrtc)"
    targets: dict[int, str] = {}

    def image(index: int) -> bytes:
        if index not in targets:
            targets[index] = target(driver.capability(index), nvrtc)
        return kernel_image(targets[index], nvrtc)

    ents = RuntimeEntries(driver, image)
    try:  # compile (or read the cache) and load for device 0 now: a failure leaves no entries
        with ents.on_device(0):
            status, _ = ents._function(entries()["potrf"].kernel("f32"))
    except RuntimeError as exc:
        return None, str(exc)
    if status:
        return None, f"the kernels compiled for {targets.get(0, 'device 0')} do not load: {describe(status, driver)}"
    _state["target"], _state["nvrtc"] = targets[0], nvrtc_version(nvrtc)
    return ents, None


def runtime_entries() -> RuntimeEntries | None:
    """The kernels compiled at run time for this machine's devices, or ``None`` without a
    driver, a device or NVRTC, or when they do not compile or load (:func:`runtime_reason`).
    Decided once; the first call compiles (or reads the cache) and loads for device 0."""
    with _lock:
        if "entries" not in _state:
            try:
                _state["entries"], _state["reason"] = _entries()
            except Exception as exc:  # never raises: the pure rules run instead
                _state["entries"], _state["reason"] = None, f"{type(exc).__name__}: {exc}"
    return _state["entries"]


def runtime_reason() -> str | None:
    """Why :func:`runtime_entries` is ``None`` (``None`` when it is not)."""
    runtime_entries()
    return _state["reason"]


def state() -> str:
    """The run-time build's state in words, cheaply: ``"active (...)"`` or the reason it is not
    once :func:`runtime_entries` has decided, else whether it would be available (a driver with
    a device and NVRTC; the kernels are compiled on first use). Never raises."""
    if "entries" in _state:
        if _state["entries"] is None:
            return f"not available ({_state['reason']})"
        return f"active ({_state['target']}, NVRTC {_state['nvrtc']})"
    try:
        driver = _state.get("driver") or Driver.load()
        _state["driver"] = driver
        count = driver.device_count()
        if count == 0:
            return "not available (the CUDA driver finds no device)"
        nvrtc = nvrtc_library(driver.version())
        if nvrtc is None:
            return "not available (no NVRTC library)"
        return f"available (NVRTC {nvrtc_version(nvrtc)}, driver {driver.version()}, {count} device(s); compiled on first use)"
    except Exception as exc:  # never raises
        return f"not available ({exc})"


__all__ = [
    "BLOCK", "MAX_BLOCKS", "Driver", "RuntimeEntries", "blocks", "cache_path", "compile_kernels", "describe", "geometry", "kernel_image",
    "nvrtc_library", "nvrtc_version", "options", "pack", "runtime_entries", "runtime_reason", "staged_grid", "state", "target",
]  # fmt: skip
