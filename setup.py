"""Build of the optional compiled kernel layers (everything else is in pyproject.toml).

``xlinalg.lapack._kernels`` (the CPU layer) is compiled from ``xlinalg/lapack/src`` with the
machine's C++17 compiler. It is optional: where no compiler exists (or the build fails) the package
installs without it and runs the pure Array-API rules.

``xlinalg/cuda/_xlinalg_cuda.so`` (the GPU layer, a plain shared library loaded with ctypes) is
compiled from ``xlinalg/cuda/src/launch.cu`` with ``nvcc`` while the extension's sources compile
(those on parallel threads), when an ``nvcc`` is found (``XLINALG_NVCC``, else
``$CUDA_HOME/bin/nvcc``, else ``PATH``) and ``XLINALG_CUDA`` is not ``0`` (on Linux). Its failure
never fails the install: a missing ``nvcc``, a compile error or a build over
``XLINALG_NVCC_TIMEOUT`` seconds prints a warning and the package installs without it. Settings:

``XLINALG_CUDA_ARCHS``
    The targets, comma- or space-separated: ``sm_XY`` (machine code for that architecture),
    ``compute_XY`` (PTX, compiled by the driver for that architecture and later ones). Default
    :data:`CUDA_ARCHS`.
``XLINALG_NVCC_FLAGS``
    Further nvcc options (shell syntax), e.g. ``-Xptxas -v`` for the kernels' registers.
``XLINALG_NVCC_TIMEOUT``
    Seconds the nvcc build may take (default :data:`NVCC_TIMEOUT`).

The library records the hash of its sources and of its build (sources, nvcc version, flags); an
existing one with the current hashes is kept, any other is rebuilt, or removed when it cannot be,
so a stale library is never installed. ``xlinalg.cuda`` refuses one whose sources differ.
"""

import contextlib
import hashlib
import importlib.util
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# the GPU library's source hash, shared with xlinalg.cuda (loaded by path: the package cannot be imported here)
_spec = importlib.util.spec_from_file_location("xlinalg_cuda_sources", "xlinalg/cuda/sources.py")
_sources = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_sources)
sources_id = _sources.sources_id

SRC = Path("xlinalg/lapack/src")
HD_SRC = Path("xlinalg/cuda/src")  # the GPU layer's per-matrix code, also compiled for the CPU
flags = ["/std:c++17", "/O2"] if sys.platform == "win32" else ["-std=c++17", "-O3", "-g0", "-fvisibility=hidden", "-fopenmp-simd"]

#: The GPU library's package and file name.
CUDA_PACKAGE, CUDA_LIBRARY = "xlinalg.cuda", "_xlinalg_cuda.so"
#: Default targets: machine code for Ampere (sm_80, which also runs on sm_86 and sm_89) and Hopper,
#: and Hopper's PTX, which the driver compiles for later architectures. sm_80 adds a third pass:
#: about 4 s to the build (12 s instead of 8 s on 2 cores) and 0.8 MB to the library (2.7 MB).
CUDA_ARCHS = "sm_80,sm_90,compute_90"
#: Default limit on the nvcc build, in seconds.
NVCC_TIMEOUT = 600


def _warn(message):
    print(f"xlinalg: {message}", file=sys.stderr, flush=True)


def find_nvcc():
    """The nvcc to use (``XLINALG_NVCC``, ``$CUDA_HOME/bin/nvcc``, ``PATH``), or ``None``."""
    given = os.environ.get("XLINALG_NVCC")
    if given:
        return given
    home = os.environ.get("CUDA_HOME")
    if home and os.path.isfile(os.path.join(home, "bin", "nvcc")):
        return os.path.join(home, "bin", "nvcc")
    return shutil.which("nvcc")


def split_compile(nvcc):
    """``--split-compile=0`` where ``nvcc`` has it (the device code's optimizations spread over
    every CPU: 57 s -> 36 s on two cores for one architecture), else nothing. Like ``--threads``
    (one thread per target), it changes how fast the library is built, not the library."""
    usage = subprocess.run([nvcc, "--help"], capture_output=True, text=True, timeout=60).stdout
    return ["--split-compile=0"] if "--split-compile" in usage else []


def arch_flags(archs):
    """nvcc's ``-gencode`` options for ``sm_XY``/``compute_XY`` targets (``ValueError`` for others)."""
    options = []
    for target in archs.replace(",", " ").split():
        kind, _, number = target.partition("_")
        if kind not in ("sm", "compute") or not number.isalnum():
            raise ValueError(f"XLINALG_CUDA_ARCHS: {target!r} is neither sm_XY nor compute_XY")
        options += ["-gencode", f"arch=compute_{number},code={target}"]
    if not options:
        raise ValueError("XLINALG_CUDA_ARCHS names no target")
    return options


class _NvccBuild:
    """An nvcc build under way: its process (in a session of its own), the file it writes, its
    output (a file: nvcc must never wait on a full pipe while the C++ extension compiles)."""

    def __init__(self, command, partial, target, timeout):
        self.partial, self.target, self.timeout = partial, target, timeout
        self.start = time.perf_counter()
        self.log = tempfile.TemporaryFile(mode="w+")
        # a session of its own: on a timeout the whole group (nvcc, cicc, ptxas, the host compiler) is killed
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def kill(self):
        """Stop nvcc (its whole group) and drop what it wrote."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.partial.unlink(missing_ok=True)

    def finish(self):
        """Wait for nvcc (``XLINALG_NVCC_TIMEOUT`` from its start) and move the library into place."""
        try:
            try:
                self.process.wait(timeout=max(0.0, self.start + self.timeout - time.perf_counter()))
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError(f"nvcc took more than XLINALG_NVCC_TIMEOUT={self.timeout:g} s") from None
            self.log.seek(0)
            output = self.log.read()
            if self.process.returncode != 0:
                raise RuntimeError(f"nvcc exited with {self.process.returncode}:\n{output[-4000:]}")
            if output.strip():
                print(output, file=sys.stderr)
            os.replace(self.partial, self.target)
        finally:
            self.log.close()
            self.partial.unlink(missing_ok=True)
        _warn(f"built {self.target} in {time.perf_counter() - self.start:.0f} s")


class BuildExt(build_ext):
    """``build_ext`` with the GPU library built beside it: nvcc runs while the C++ extension's
    sources compile, those in parallel. The GPU library never fails the build."""

    def run(self):
        nvcc = self._cuda_step(self.start_cuda)
        try:
            super().run()
        except BaseException:
            if nvcc is not None:
                nvcc.kill()
            raise
        if nvcc is not None:
            self._cuda_step(nvcc.finish)

    def _cuda_step(self, step):
        try:
            return step()
        except Exception as exc:  # the GPU library is optional: whatever went wrong, install without it
            _warn(f"the CUDA library was not built ({type(exc).__name__}: {exc}); installing without it")
            self._cuda_target().unlink(missing_ok=True)
            return None

    def build_extension(self, ext):
        """The extension with its sources compiled on parallel threads (one per source, at most
        one per CPU), then linked as usual."""
        compile_sources = self.compiler.compile

        def compile_in_parallel(sources, *args, **kwargs):
            with ThreadPoolExecutor(max(1, min(len(sources), os.cpu_count() or 1))) as pool:
                parts = [pool.submit(compile_sources, [source], *args, **kwargs) for source in sources]
            return [obj for part in parts for obj in part.result()]  # every source tried, then the first error

        self.compiler.compile = compile_in_parallel
        try:
            super().build_extension(ext)
        finally:
            self.compiler.compile = compile_sources

    def _cuda_target(self):
        """Where the library goes: beside the package's sources in place (editable installs),
        else in the build directory."""
        if self.inplace:
            package_dir = self.get_finalized_command("build_py").get_package_dir(CUDA_PACKAGE)
            return Path(package_dir) / CUDA_LIBRARY
        return Path(self.build_lib, *CUDA_PACKAGE.split(".")) / CUDA_LIBRARY

    def start_cuda(self):
        """Start nvcc on the GPU library (a :class:`_NvccBuild`), or ``None`` where there is
        nothing to build (up to date, no nvcc, ``XLINALG_CUDA=0``, not Linux)."""
        target = self._cuda_target()
        sources = sources_id(HD_SRC)
        if os.environ.get("XLINALG_CUDA", "").strip() == "0":
            target.unlink(missing_ok=True)
            _warn("XLINALG_CUDA=0: the CUDA library is not built")
            return None
        if sys.platform != "linux":
            target.unlink(missing_ok=True)
            _warn(f"the CUDA library is built on Linux only (this is {sys.platform})")
            return None
        nvcc = find_nvcc()
        if nvcc is None:
            # a library of the current sources may stay (it was built, with whatever nvcc); any other goes
            if not (target.exists() and f"sources:{sources} ".encode() in target.read_bytes()):
                target.unlink(missing_ok=True)
            _warn("no nvcc (XLINALG_NVCC, CUDA_HOME, PATH): the CUDA library is not built")
            return None
        version = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=60, check=True).stdout
        command = [
            nvcc, "-std=c++17", "-O3", "-shared", "-Xcompiler", "-fPIC,-fvisibility=hidden", "-cudart", "static",
            *arch_flags(os.environ.get("XLINALG_CUDA_ARCHS") or CUDA_ARCHS),
            *shlex.split(os.environ.get("XLINALG_NVCC_FLAGS", "")),
        ]  # fmt: skip
        build = hashlib.sha256("\0".join([sources, version, *command[1:]]).encode()).hexdigest()[:16]
        if target.exists() and f"sources:{sources} build:{build}".encode() in target.read_bytes():
            return None  # up to date
        target.unlink(missing_ok=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial.so")  # (ignored by git like the library)
        gencodes = command.count("-gencode")
        command += [f"-DXL_CUDA_SOURCES_ID={sources}", f"-DXL_CUDA_BUILD_ID={build}", "--threads", str(max(1, min(gencodes, os.cpu_count() or 1)))]
        command += split_compile(nvcc)
        command += ["-o", str(partial), str(HD_SRC / "launch.cu")]
        _warn(f"building the CUDA library: {shlex.join(command)}")
        return _NvccBuild(command, partial, target, float(os.environ.get("XLINALG_NVCC_TIMEOUT") or NVCC_TIMEOUT))

    def get_outputs(self):
        outputs = super().get_outputs()
        target = Path(self.build_lib, *CUDA_PACKAGE.split(".")) / CUDA_LIBRARY
        if not self.inplace and target.exists():
            outputs.append(str(target))
        return outputs

    def get_output_mapping(self):
        mapping = super().get_output_mapping()
        if self.inplace and self._cuda_target().exists():
            mapping[str(Path(self.build_lib, *CUDA_PACKAGE.split(".")) / CUDA_LIBRARY)] = str(self._cuda_target())
        return mapping


setup(
    cmdclass={"build_ext": BuildExt},
    ext_modules=[
        Extension(
            "xlinalg.lapack._kernels",
            sources=[str(SRC / "entries.cpp"), str(SRC / "module.cpp"), str(HD_SRC / "host_entries.cpp")],
            depends=[str(p) for p in sorted([*SRC.glob("*.h*"), *HD_SRC.glob("*.h"), *HD_SRC.glob("*.def")])],
            extra_compile_args=flags,
            extra_link_args=[] if sys.platform == "win32" else ["-pthread"],
            language="c++",
            optional=True,
        )
    ],
)
