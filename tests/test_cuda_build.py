"""The GPU kernel layer's build (xlinalg.cuda): no GPU needed.

* the library is built wherever an nvcc is (a missing library then fails, it does not skip), from
  the package's current sources, and exports exactly the entries of ``entries.def`` for both
  dtypes and its helpers;
* it loads without a GPU or a driver, a batch of 0 launches nothing and returns 0, and without a
  device a launch returns a CUDA error code instead of crashing (on a machine with a GPU: real
  device memory, checked against NumPy);
* ``kernels.cuh`` compiles with NVRTC (where an NVRTC library is installed), and ptxas keeps the
  fixed-order kernels' matrices in registers and every kernel's per-thread scratch small;
* ``setup.py``'s nvcc step, with a stand-in nvcc: where the library lands, its flags, no rebuild of
  an up-to-date library, a rebuild on a change, and a failure, a timeout or ``XLINALG_CUDA=0``
  leaving no library and no failed install;
* ``entries.def`` parses into the ctypes signatures.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from xlinalg import cuda, lapack
from xlinalg.cuda import entries as cuda_entries
from xlinalg.cuda import rules, runtime
from xlinalg.cuda.runtime import BLOCK_ENTRY_THREADS, nvrtc_library

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "xlinalg" / "cuda" / "src"


def _nvcc():
    """The nvcc the install would use (setup.py's order), or ``None``."""
    if os.environ.get("XLINALG_NVCC"):
        return os.environ["XLINALG_NVCC"]
    home = os.environ.get("CUDA_HOME")
    if home and os.path.isfile(os.path.join(home, "bin", "nvcc")):
        return os.path.join(home, "bin", "nvcc")
    return shutil.which("nvcc")


def _needs_library():
    """Skip where the install would not build the library; elsewhere a missing library fails."""
    if os.environ.get("XLINALG_CUDA", "").strip() == "0":
        pytest.skip("XLINALG_CUDA=0: the CUDA library is not built")
    if _nvcc() is None:
        pytest.skip("no nvcc: the CUDA library is not built")
    lib = cuda.library()
    assert lib is not None, f"nvcc is at {_nvcc()} but the CUDA library is not available: {cuda.unavailable_reason()}"
    return lib


def _null_call(function, entry, batch, layout="packed"):
    """``function`` (an entry's ctypes function in ``layout``) with ``batch``, every pointer
    null, orders 2 (staged: 2 elements per batch entry)."""
    args = []
    for p in entry.parameters(layout):
        args.append(batch if p.name == "batch" else None if p.pointer else 1.0 if p.ctype is ctypes.c_double else 2)
    return function(*args, None)


# ---- the built library ------------------------------------------------------------------------


def test_library_is_built_from_the_current_sources():
    lib = _needs_library()
    built = lib.xl_cuda_build_id().decode()
    assert re.fullmatch(r"sources:[0-9a-f]{16} build:[0-9a-f]{16}", built), built
    assert built.split()[0] == f"sources:{cuda.sources_id()}"
    info = cuda.config()
    assert info["built"] and info["active"] and info["reason"] == "loaded"
    assert info["entries"] == len(cuda_entries.DTYPES) * sum(len(e.layouts) for e in cuda_entries.entries().values())


def test_exports_exactly_the_entries_and_helpers():
    _needs_library()
    want = set(cuda_entries.symbols()) | set(cuda.HELPERS)
    assert len(want) == len(cuda_entries.DTYPES) * sum(len(e.layouts) for e in cuda_entries.entries().values()) + len(cuda.HELPERS)
    nm = shutil.which("nm")
    if nm is None:  # pragma: no cover - binutils is on every build machine
        pytest.skip("no nm to list the exports")
    listing = subprocess.run([nm, "-D", "--defined-only", str(cuda.LIBRARY_PATH)], capture_output=True, text=True, check=True).stdout
    exported = {line.split()[-1] for line in listing.splitlines() if line.strip()}
    assert exported == want, f"missing {sorted(want - exported)}, unexpected {sorted(exported - want)}"


def test_loads_and_reports_without_a_gpu():
    lib = _needs_library()
    assert lib.xl_cuda_runtime_version() >= 12000
    assert lib.xl_cuda_block_size() > 0 and lib.xl_cuda_block_size() % 32 == 0
    assert lib.xl_cuda_block_entry_threads() == BLOCK_ENTRY_THREADS == 128
    info = cuda.config()
    count = cuda.device_count()
    assert count == info["devices"] >= 0
    assert (info["device_status"] == "ok") == (count > 0)
    if count == 0:  # no driver new enough (35) or no device (100), or another reason, all named
        assert info["device_status"].startswith("cudaError")
    assert cuda.error_name(100) == "cudaErrorNoDevice"
    assert cuda.error_name(35) == "cudaErrorInsufficientDriver"
    assert cuda.error_string(0) == "no error"
    limit = ctypes.c_int(-1)
    status = lib.xl_cuda_shared_limit(ctypes.byref(limit))
    assert (status, limit.value >= 65536) == (0, True) if count > 0 else (status != 0 and limit.value == 0)
    device = ctypes.c_int(-2)
    status = lib.xl_cuda_get_device(ctypes.byref(device))
    assert (status, device.value) == (0, 0) if count > 0 else (status != 0 and device.value == -1)
    # the library's code on the current device: an error without one (its reason as the count's)
    status = lib.xl_cuda_kernel_image()
    if count > 0:
        assert status == 0 or cuda.error_name(status) == "cudaErrorNoKernelImageForDevice"
    else:
        assert cuda.error_name(status) == info["device_status"] == cuda.device_status()


def test_show_config_reports_the_cuda_layer(capsys):
    import xlinalg

    info = xlinalg.show_config()
    text = capsys.readouterr().out
    assert "CUDA kernel layer: " in text
    assert info["cuda"] == cuda.config()
    assert ("CUDA kernel layer: built" in text) == info["cuda"]["active"]


def test_show_config_reports_devices_without_the_librarys_code(capsys, monkeypatch):
    import xlinalg
    from xlinalg.cuda import rules

    _needs_library()

    class Found:
        def missing_code(self):
            return {1: "cudaErrorNoKernelImageForDevice (no kernel image is available)"}

    monkeypatch.setattr(rules, "library_entries", lambda: Found())
    info = xlinalg.show_config()
    assert info["cuda"]["missing_code"] == Found().missing_code()
    assert "no code for device 1 (cudaErrorNoKernelImageForDevice (no kernel image is available)): the kernels built at run time" in capsys.readouterr().out


def test_show_config_reports_jaxs_cuda_handlers_once_jax_is_imported(capsys):
    pytest.importorskip("jax")
    import xlinalg
    from xlinalg.cuda import jax_ffi

    info = xlinalg.show_config()
    assert info["cuda"]["jax_handlers"] == jax_ffi.reason()
    assert ("loaded" == jax_ffi.reason()) == (jax_ffi.library() is not None)
    assert f"JAX FFI handlers for CUDA: {jax_ffi.reason()}" in capsys.readouterr().out
    # without JAX in the process: nothing said, nothing built
    code = "import sys, xlinalg.cuda as c; print('jax' in sys.modules, 'jax_handlers' in c.config(), 'jax' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.stdout.split() == ["False", "False", "False"], run.stderr[-2000:]


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, "packed"), ("interleaved", "interleaved"), ("staged", "staged"), ("tiled", "invalid (XLINALG_CUDA_LAYOUT must be one of")],
)
def test_show_config_reports_the_layout(capsys, monkeypatch, value, shown):
    import xlinalg

    if value is None:
        monkeypatch.delenv("XLINALG_CUDA_LAYOUT", raising=False)
    else:
        monkeypatch.setenv("XLINALG_CUDA_LAYOUT", value)
    info = xlinalg.show_config()
    assert info["cuda"]["layout"].startswith(shown)
    assert f"CUDA arrays' layout for the kernels (XLINALG_CUDA_LAYOUT): {shown}" in capsys.readouterr().out


@pytest.mark.parametrize("layout", list(cuda_entries.LAYOUTS))
@pytest.mark.parametrize("suffix", list(cuda_entries.DTYPES))
def test_batch_zero_launches_nothing(suffix, layout):
    lib = _needs_library()
    for entry in (e for e in cuda_entries.entries().values() if layout in e.layouts):
        function = getattr(lib, entry.symbol(suffix, layout))
        assert _null_call(function, entry, 0, layout) == 0, entry.name
        assert _null_call(function, entry, -1, layout) == 1, entry.name  # cudaErrorInvalidValue


@pytest.mark.parametrize("suffix", list(cuda_entries.DTYPES))
def test_a_staged_launch_beyond_the_shared_memory_limit_is_invalid(suffix):
    """A group's staging area above kStageMaxBytes (or a negative stage) is refused before any
    launch (cudaErrorInvalidValue), device or not."""
    lib = _needs_library()
    entry = cuda_entries.entries()["potrf"]
    function = getattr(lib, entry.symbol(suffix, "staged"))
    itemsize = 4 if suffix == "f32" else 8
    for stage in (rules.STAGE_MAX_BYTES // ((rules.STAGE_GROUP | 1) * itemsize) + 1, -1):
        assert function(1, 3, 2, None, None, None, stage, None) == 1, stage  # cudaErrorInvalidValue


@pytest.mark.parametrize("layout", list(cuda_entries.LAYOUTS))
@pytest.mark.parametrize("suffix", list(cuda_entries.DTYPES))
def test_a_launch_without_a_device_returns_the_error(suffix, layout):
    """Without a usable device every launch returns the runtime's error (35 without a driver new
    enough, 100 without a GPU), and never crashes; with one, null pointers would fault the
    context, so the real run below checks launches instead."""
    lib = _needs_library()
    if cuda.device_count() > 0:
        pytest.skip("a device is present: test_runs_on_a_device launches on it")
    for entry in (e for e in cuda_entries.entries().values() if layout in e.layouts):
        status = _null_call(getattr(lib, entry.symbol(suffix, layout)), entry, 3, layout)
        assert status != 0, entry.name
        assert cuda.error_name(status).startswith("cudaError"), (entry.name, status)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_runs_on_a_device(dtype):
    """On a machine with a GPU: potrf and sumlogdiag of a small SPD batch in device memory agree
    with NumPy; status 0 per entry."""
    lib = _needs_library()
    if cuda.device_count() == 0:
        pytest.skip(f"no CUDA device ({cuda.config()['device_status']})")
    suffix = "f32" if dtype == np.float32 else "f64"
    rng = np.random.default_rng(0)
    batch, n = 5, 4
    x = rng.standard_normal((batch, n, n))
    a = (x @ x.transpose(0, 2, 1) + n * np.eye(n)).astype(dtype)

    def device(array):
        pointer = ctypes.c_void_p()
        assert lib.xl_cuda_malloc(ctypes.byref(pointer), array.nbytes) == 0
        assert lib.xl_cuda_memcpy(pointer, array.ctypes.data, array.nbytes) == 0
        return pointer

    def host(pointer, like):
        out = np.empty_like(like)
        assert lib.xl_cuda_memcpy(out.ctypes.data, pointer, out.nbytes) == 0
        return out

    da, dout, dstatus, dsum = device(a), device(np.zeros_like(a)), device(np.full(batch, -1, np.int32)), device(np.zeros(batch, dtype))
    try:
        assert getattr(lib, f"xl_cuda_potrf_{suffix}")(1, batch, n, da, dout, dstatus, None) == 0
        assert getattr(lib, f"xl_cuda_sumlogdiag_{suffix}")(batch, n, dout, dsum, None) == 0
        assert lib.xl_cuda_stream_synchronize(None) == 0
        factor, status, total = host(dout, a), host(dstatus, np.zeros(batch, np.int32)), host(dsum, np.zeros(batch, dtype))
    finally:
        for pointer in (da, dout, dstatus, dsum):
            lib.xl_cuda_free(pointer)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    want = np.linalg.cholesky(a.astype(np.float64))
    np.testing.assert_array_equal(status, 0)
    np.testing.assert_allclose(factor, want, rtol=tol, atol=tol)
    np.testing.assert_allclose(total, np.log(np.diagonal(want, axis1=1, axis2=2)).sum(-1), rtol=tol, atol=tol)


# ---- NVRTC --------------------------------------------------------------------------------------


def test_kernels_include_only_nvrtc_safe_headers():
    """kernels.cuh includes the per-matrix headers and entries.def only, and under NVRTC (``__CUDACC_RTC__``)
    nothing it pulls in includes a header from outside src/ (NVRTC has no system headers): the
    host preprocessor lists the dependencies without any system include path."""
    includes = re.findall(r'^\s*#\s*include\s+[<"]([^>"]+)', (SRC / "kernels.cuh").read_text(), re.M)
    assert includes == ["eigen_block.h", "fixed.h", "per_matrix.h", "entries.def"]
    compiler = shutil.which("g++") or shutil.which("clang++")
    if compiler is None:
        pytest.skip("no C++ preprocessor")
    run = subprocess.run([compiler, "-M", "-nostdinc", "-D__CUDACC_RTC__", "-x", "c++", "-std=c++17", "kernels.cuh"], cwd=SRC, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    dependencies = run.stdout.replace("\\\n", " ").split(":", 1)[1].split()
    assert {"kernels.cuh", "eigen_block.h", "block.h", "per_matrix.h", "eigen.h", "hd.h", "entries.def"} <= set(dependencies)
    assert all((SRC / name).resolve().parent == SRC.resolve() for name in dependencies), dependencies


@pytest.fixture(scope="module")
def nvrtc_ptx() -> str:
    """kernels.cuh compiled by NVRTC for compute_90: the PTX (the compile must succeed)."""
    nvrtc = nvrtc_library()
    if nvrtc is None:
        pytest.skip("no NVRTC library (pip install nvidia-cuda-nvrtc, or a CUDA toolkit with libnvrtc)")
    program = ctypes.c_void_p()
    source = (SRC / "kernels.cuh").read_bytes()
    assert nvrtc.nvrtcCreateProgram(ctypes.byref(program), source, b"kernels.cu", 0, None, None) == 0
    try:
        options = [o.encode() for o in (*runtime.options(nvrtc), "-arch=compute_90")]
        status = nvrtc.nvrtcCompileProgram(program, len(options), (ctypes.c_char_p * len(options))(*options))
        size = ctypes.c_size_t()
        nvrtc.nvrtcGetProgramLogSize(program, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value + 1)
        nvrtc.nvrtcGetProgramLog(program, log)
        assert status == 0, log.value.decode(errors="replace")[-4000:]
        nvrtc.nvrtcGetPTXSize(program, ctypes.byref(size))
        ptx = ctypes.create_string_buffer(size.value + 1)
        assert nvrtc.nvrtcGetPTX(program, ptx) == 0
    finally:
        nvrtc.nvrtcDestroyProgram(ctypes.byref(program))
    return ptx.value.decode()


def test_kernels_compile_with_nvrtc(nvrtc_ptx):
    kernels = set(re.findall(r"\.entry\s+(\w+)", nvrtc_ptx))
    assert kernels == {k for entry in cuda_entries.entries().values() for s in cuda_entries.DTYPES for k in entry.kernels(s)}


def _stack_frames(ptx: str, names: list[str], tmp_path: Path) -> dict[str, int]:
    """The bytes of stack frame (local memory per thread) ptxas gives each kernel of ``names``
    in ``ptx`` for sm_90; skips where there is no ptxas."""
    ptxas = shutil.which("ptxas") or (_nvcc() and shutil.which("ptxas", path=str(Path(_nvcc()).parent)))
    if not ptxas:
        pytest.skip("no ptxas")
    (tmp_path / "kernels.ptx").write_text(ptx)
    run = subprocess.run(
        [ptxas, "-arch=sm_90", "-v", *[f"--entry={name}" for name in names], "-o", str(tmp_path / "kernels.cubin"), "kernels.ptx"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    usage = {name: int(stack) for name, stack in re.findall(r"Function properties for (\w+)\n\s*(\d+) bytes stack frame", run.stdout + run.stderr)}
    assert set(usage) == set(names), run.stderr
    return usage


def test_fixed_order_kernels_keep_their_matrices_in_registers(nvrtc_ptx, tmp_path):
    """What the fixed-order kernels are for (fixed.h): ptxas, for sm_90, puts the matrices of the
    largest orders in registers. potrf's kernels use no local memory; potrf_vjp's at most 32
    bytes of spills (float64, order 12), where the kernel taking the order at run time would
    keep them in global memory."""
    names = [entry.fixed_kernel(s, cuda_entries.fixed_max_order(s)) for entry in cuda_entries.entries().values() if entry.fixed for s in cuda_entries.DTYPES]
    assert len(names) == 4
    for name, stack in _stack_frames(nvrtc_ptx, names, tmp_path).items():
        assert stack <= (32 if "vjp" in name else 0), f"{name}: {stack} bytes of local memory"


def test_per_thread_scratch_is_at_most_a_packed_triangle(nvrtc_ptx, tmp_path):
    """The driver reserves a kernel's local memory for every thread a GPU can hold (about 270 000
    on 132 multiprocessors), so the largest stack frame of the one-thread-per-matrix kernels is
    device memory taken at their first launch: ptxas, for sm_90, gives none more than the largest
    scratch of the per-matrix code, syevd's symmetric matrix as a packed triangle of order
    ``MAX_ORDER`` and a vector (eigen.h), plus 256 bytes (about 4.6 KB in float64, 1.2 GB
    reserved); a square scratch matrix of that order would double it."""
    names = [entry.kernel(s, layout) for entry in cuda_entries.entries().values() if not entry.block for s in cuda_entries.DTYPES for layout in entry.layouts]
    scratch = rules.MAX_ORDER * (rules.MAX_ORDER + 1) // 2 + rules.MAX_ORDER
    usage = _stack_frames(nvrtc_ptx, names, tmp_path)
    over = {name: stack for name, stack in usage.items() if stack > scratch * (8 if "_f64" in name else 4) + 256}
    assert not over, f"stack frames beyond a packed triangle and a vector of order {rules.MAX_ORDER}: {over}"


# ---- entries.def --------------------------------------------------------------------------------


def test_entries_def_parses_into_ctypes_signatures():
    table = cuda_entries.entries()
    assert {"potrf", "potrf_vjp", "trsm", "syevd"} <= set(table)
    trsm = table["trsm"]
    assert [p.name for p in trsm.params] == ["flags", "alpha", "batch", "rows", "cols", "a", "b", "out", "status"]
    assert trsm.argtypes() == [ctypes.c_int, ctypes.c_double, ctypes.c_int64, ctypes.c_int, ctypes.c_int] + [ctypes.c_void_p] * 5
    assert trsm.argtypes("staged") == trsm.argtypes()[:-1] + [ctypes.c_int, ctypes.c_void_p]  # the stage, then the stream
    assert trsm.parameters("staged")[-1] == cuda_entries.STAGE and trsm.parameters("interleaved") == trsm.params
    assert trsm.args == ("flags", "alpha", "rows", "cols", "a", "b", "out", "status")
    assert trsm.batch_index == 2 and trsm.symbol("f64") == "xl_cuda_trsm_f64" and trsm.kernel("f32") == "xl_kernel_trsm_f32"
    assert trsm.symbol("f32", "interleaved") == "xl_cuda_trsm_f32_interleaved" and not trsm.block
    block = table["syevd_block"]  # XL_HD_BLOCK_ENTRIES: packed only
    assert block.block and block.layouts == ("packed",) and trsm.layouts == ("packed", "interleaved", "staged")
    assert trsm.symbol("f64", "staged") == "xl_cuda_trsm_f64_staged"
    with pytest.raises(ValueError, match="syevd_block: layout must be one of"):
        block.symbol("f32", "interleaved")
    for entry in table.values():
        assert entry.args == tuple(p.name for p in entry.params if p.name != "batch")
        assert entry.argtypes()[-1] is ctypes.c_void_p  # the stream
    # every entry has its per-matrix function (the same list feeds the CPU build and the kernels)
    per_matrix = "".join((SRC / name).read_text() for name in ("per_matrix.h", "eigen.h", "eigen_block.h"))
    for name in table:
        assert re.search(rf"\b{name}_entry\s*\(", per_matrix), name
    # the fixed-order entries (fixed.h) and their kernels, after the layouts' ones
    assert [name for name, entry in table.items() if entry.fixed] == ["potrf", "potrf_vjp"]
    assert (cuda_entries.fixed_max_order("f32"), cuda_entries.fixed_max_order("f64")) == (16, 12)
    assert table["potrf"].kernels("f64")[3:] == [f"xl_kernel_potrf_f64_n{n}" for n in range(1, 13)]
    assert table["potrf"].fixed_kernel("f32", 17) is None and table["trsm"].fixed_kernel("f32", 4) is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "no '#define XL_HD_ENTRIES"),
        ("#define XL_HD_ENTRIES(X)\n", "lists no entry"),
        ("#define XL_HD_ENTRIES(X) X(f, (int64_t batch, int n, const T* a), (n))", "params less batch"),
        ("#define XL_HD_ENTRIES(X) X(f, (int n, const T* a), (n, a))", "int64_t batch"),
        ("#define XL_HD_ENTRIES(X) X(f, (int64_t batch, float s), (s))", "no ctypes mapping"),
        ("#define XL_HD_ENTRIES(X) X(f, int64_t batch, ())", "parenthesized"),
        ("#define XL_HD_ENTRIES(X) X(f, (int64_t batch))", "X\\(name, params, args\\)"),
        ("#define XL_HD_ENTRIES(X) X(f, (int64_t batch), ()) \\\n X(f, (int64_t batch), ())", "twice"),
        ("#define XL_HD_ENTRIES(X) X(f, (int64_t batch), ())\n#define XL_HD_FIXED_g ~, 1", "XL_HD_FIXED_g names no entry"),
        ("#define XL_HD_ENTRIES(X) X(f, (int64_t batch, int n), (n))\n#define XL_HD_FIXED_f ~, 1", "'int lower' and 'int n'"),
    ],
)
def test_entries_def_errors(text, message):
    with pytest.raises(ValueError, match=message):
        cuda_entries.parse(text)


def test_entries_def_continuations_and_comments():
    text = textwrap.dedent(
        """\
        // X(ignored, (int64_t batch), ())
        #define XL_HD_ENTRIES(X)   \\
          X(one, (int flags, double alpha, int64_t batch, const T* a, int32_t* s), /* same */ \\
            (flags, alpha, a, s))   \\
          X(two, (int64_t batch), ())
        #define OTHER X(three, (int64_t batch), ())
        """
    ).replace("/* same */", "")
    table = cuda_entries.parse(text)
    assert list(table) == ["one", "two"]
    assert [p.type for p in table["one"].params] == ["int", "double", "int64_t", "const T*", "int32_t*"]


# ---- setup.py's nvcc step, with a stand-in nvcc -------------------------------------------------

FAKE_NVCC = """\
#!{python}
# A stand-in nvcc: logs its arguments, then fails, sleeps or writes a "library" holding the ids.
import json, os, sys, time
args = sys.argv[1:]
if args == ["--version"]:
    print("stand-in nvcc " + os.environ.get("FAKE_NVCC_VERSION", "1"))
    sys.exit(0)
if args == ["--help"]:
    print(os.environ.get("FAKE_NVCC_HELP", "--split-compile <number>    (-split-compile)"))
    sys.exit(0)
with open(os.environ["FAKE_NVCC_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if "FAKE_NVCC_STARTED" in os.environ:
    open(os.environ["FAKE_NVCC_STARTED"], "w").close()
mode = os.environ.get("FAKE_NVCC", "ok")
if mode == "fail":
    sys.exit("error: stand-in failure")
if mode == "sleep":
    time.sleep(120)
ids = dict(a[len("-DXL_CUDA_"):].split("=", 1) for a in args if a.startswith("-DXL_CUDA_"))
with open(args[args.index("-o") + 1], "w") as out:
    out.write("stand-in library sources:" + ids["SOURCES_ID"] + " build:" + ids["BUILD_ID"])
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of the project (sources only) and a stand-in nvcc."""
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip("building the package needs setuptools>=77 in this environment")
    if lapack.mode() == "python":
        pytest.skip("the build does not depend on XLINALG_KERNELS: checked in the other passes")
    base = tmp_path_factory.mktemp("cuda-build")
    source = base / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "build", "site", "*.so", "*.egg-info", "__pycache__", "docs", "tests", "benchmarks"))
    nvcc = base / "nvcc"
    nvcc.write_text(FAKE_NVCC.format(python=sys.executable))
    nvcc.chmod(0o755)
    return source, nvcc


def _build(project, tmp_path, *, inplace=False, **env):
    """``setup.py build_ext`` of the copy with the stand-in nvcc (no C++ compiler: the CPU layer
    is skipped); returns (the library's path, the nvcc calls, the process)."""
    source, nvcc = project
    log = tmp_path / "nvcc.log"
    environment = {**os.environ, "CC": "/bin/false", "CXX": "/bin/false", "XLINALG_NVCC": str(nvcc), "FAKE_NVCC_LOG": str(log)}
    for name in ("XLINALG_CUDA", "XLINALG_CUDA_ARCHS", "XLINALG_NVCC_FLAGS", "XLINALG_NVCC_TIMEOUT", "FAKE_NVCC", "FAKE_NVCC_HELP"):
        environment.pop(name, None)
    environment.update(env)
    where = ["--inplace"] if inplace else ["--build-lib", str(tmp_path / "lib"), "--build-temp", str(tmp_path / "temp")]
    run = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", *where], cwd=source, env=environment, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    library = (source if inplace else tmp_path / "lib") / "xlinalg" / "cuda" / "_xlinalg_cuda.so"
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return library, calls, run


def test_setup_builds_with_the_flags_and_keeps_an_up_to_date_library(project, tmp_path):
    library, calls, _ = _build(project, tmp_path)
    assert len(calls) == 1
    args = calls[0]
    for flag in ("-std=c++17", "-O3", "-shared", "-Xcompiler"):
        assert flag in args
    assert args[args.index("-Xcompiler") + 1] == "-fPIC,-fvisibility=hidden"
    assert args[args.index("-cudart") + 1] == "static"
    assert [args[i + 1] for i, a in enumerate(args) if a == "-gencode"] == [
        "arch=compute_80,code=sm_80", "arch=compute_90,code=sm_90", "arch=compute_90,code=compute_90",
    ]  # fmt: skip
    assert args[-1].endswith("launch.cu")
    assert args[args.index("--threads") + 1] == str(min(3, os.cpu_count())) and "--split-compile=0" in args
    sources = cuda.sources_id(project[0] / "xlinalg" / "cuda" / "src")
    assert f"sources:{sources} build:" in library.read_text()
    # up to date: no second build; other flags or another nvcc: rebuilt
    assert len(_build(project, tmp_path)[1]) == 1
    library, calls, _ = _build(project, tmp_path, XLINALG_CUDA_ARCHS="sm_80 compute_80", XLINALG_NVCC_FLAGS="-Xptxas -v")
    assert len(calls) == 2 and "arch=compute_80,code=sm_80" in calls[1] and calls[1][calls[1].index("-Xptxas") + 1] == "-v"
    assert len(_build(project, tmp_path, XLINALG_CUDA_ARCHS="sm_80 compute_80", XLINALG_NVCC_FLAGS="-Xptxas -v", FAKE_NVCC_VERSION="2")[1]) == 3


def test_setup_splits_the_compile_only_where_nvcc_can(project, tmp_path):
    _, calls, _ = _build(project, tmp_path, FAKE_NVCC_HELP="--threads <number>")
    assert len(calls) == 1 and not any(a.startswith("--split-compile") for a in calls[0])
    # the library does not depend on it: not rebuilt for an nvcc that has it
    assert len(_build(project, tmp_path)[1]) == 1


def test_setup_rebuilds_when_a_source_changes(project, tmp_path):
    library, calls, _ = _build(project, tmp_path)
    first = library.read_text()
    header = project[0] / "xlinalg" / "cuda" / "src" / "hd.h"
    saved = header.read_text()
    try:
        header.write_text(saved + "\n// changed\n")
        library, calls, _ = _build(project, tmp_path)
        assert len(calls) == 2 and library.read_text() != first
        # a failed rebuild, or no nvcc, leaves no stale library behind
        header.write_text(saved + "\n// changed again\n")
        _, _, run = _build(project, tmp_path, FAKE_NVCC="fail")
        assert not library.exists() and "stand-in failure" in run.stderr
        library, _, _ = _build(project, tmp_path)
        header.write_text(saved)
        _, _, run = _build(project, tmp_path, XLINALG_NVCC="", PATH=_path_without_nvcc(), CUDA_HOME="")
        assert not library.exists() and "no nvcc" in run.stderr
    finally:
        header.write_text(saved)


def test_setup_never_fails_the_build(project, tmp_path):
    library, _, run = _build(project, tmp_path, FAKE_NVCC="sleep", XLINALG_NVCC_TIMEOUT="1")
    assert not library.exists() and "XLINALG_NVCC_TIMEOUT=1" in run.stderr
    assert not list(library.parent.glob("*.partial*"))
    _, calls, run = _build(project, tmp_path, XLINALG_CUDA_ARCHS="volta")
    assert not library.exists() and "neither sm_XY nor compute_XY" in run.stderr
    library, _, _ = _build(project, tmp_path)
    assert library.exists()
    _, _, run = _build(project, tmp_path, XLINALG_CUDA="0")
    assert not library.exists() and "XLINALG_CUDA=0" in run.stderr
    _, _, run = _build(project, tmp_path, XLINALG_NVCC=str(tmp_path / "missing-nvcc"))
    assert not library.exists() and "not built" in run.stderr


# A stand-in C++ compiler: logs its sources, whether the stand-in nvcc had started (waiting for it
# up to 20 s) and when it ran (three seconds, so that two at once overlap even on a loaded
# machine), then fails (the CPU extension is optional: the build goes on without it).
FAKE_CXX = """\
#!{python}
import json, os, sys, time
started = os.environ["FAKE_NVCC_STARTED"]
deadline = time.monotonic() + 20
while not os.path.exists(started) and time.monotonic() < deadline:
    time.sleep(0.05)
begin = time.time()
time.sleep(3)
with open(os.environ["FAKE_CXX_LOG"], "a") as log:
    log.write(json.dumps([[a for a in sys.argv if a.endswith(".cpp")], os.path.exists(started), begin, time.time()]) + "\\n")
sys.exit(1)
"""


def test_setup_compiles_the_extension_while_nvcc_runs(project, tmp_path):
    cxx = tmp_path / "cxx"
    cxx.write_text(FAKE_CXX.format(python=sys.executable))
    cxx.chmod(0o755)
    log, started = tmp_path / "cxx.log", tmp_path / "nvcc-started"
    library, calls, _ = _build(project, tmp_path, CC=str(cxx), CXX=str(cxx), FAKE_CXX_LOG=str(log), FAKE_NVCC_STARTED=str(started))
    assert library.exists() and len(calls) == 1
    compiles = [json.loads(line) for line in log.read_text().splitlines()]
    # the three sources compiled each on its own, every one while nvcc was running ...
    assert sorted(Path(c[0][0]).name for c in compiles) == ["entries.cpp", "host_entries.cpp", "module.cpp"], compiles
    assert all(len(sources) == 1 and nvcc_running for sources, nvcc_running, _, _ in compiles), compiles
    # ... and two at once where there are two CPUs
    first, second = sorted(c[2:] for c in compiles)[:2]
    assert (second[0] < first[1]) == (os.cpu_count() > 1), compiles


def test_setup_builds_in_place_for_editable_installs(project, tmp_path):
    library, calls, _ = _build(project, tmp_path, inplace=True)
    try:
        assert library == project[0] / "xlinalg" / "cuda" / "_xlinalg_cuda.so" and library.exists() and len(calls) == 1
    finally:
        library.unlink(missing_ok=True)


def test_pip_install_puts_the_library_in_the_package(project, tmp_path):
    """``pip install .`` (a wheel, not in place): the library and the sources are installed."""
    source, nvcc = project
    target = tmp_path / "site"
    env = {**os.environ, "CC": "/bin/false", "CXX": "/bin/false", "XLINALG_NVCC": str(nvcc), "FAKE_NVCC_LOG": str(tmp_path / "log")}
    env.pop("XLINALG_CUDA", None)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target), str(source)],
        env=env, capture_output=True, text=True, cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    assert (target / "xlinalg" / "cuda" / "_xlinalg_cuda.so").read_text().startswith("stand-in library sources:")
    for name in ("entries.def", "kernels.cuh", "launch.cu", "per_matrix.h", "hd.h", "host_entries.cpp"):
        assert (target / "xlinalg" / "cuda" / "src" / name).exists(), name
    assert (target / "xlinalg" / "cuda" / "entries.py").exists()


def _path_without_nvcc():
    """``PATH`` less the folders that hold an nvcc."""
    return os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep) if d and not os.path.exists(os.path.join(d, "nvcc")))
