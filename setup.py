"""Build of the optional compiled kernel layers (everything else is in pyproject.toml).

``xlinalg.lapack._kernels`` (the CPU layer) is compiled from ``xlinalg/lapack/src`` with the
machine's C++17 compiler. It is optional: where no compiler exists (or the build fails) the package
installs without it and runs the pure Array-API rules.

``xlinalg/cuda/_xlinalg_cuda.so`` (the GPU layer, a plain shared library loaded with ctypes) is
compiled from ``xlinalg/cuda/src/launch.cu`` with ``nvcc`` after the extensions, when an ``nvcc``
is found (``XLINALG_NVCC``, else ``$CUDA_HOME/bin/nvcc``, else ``PATH``) and ``XLINALG_CUDA`` is
not ``0`` (on Linux). Its failure never fails the install: a missing ``nvcc``, a compile error or a build over
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

import hashlib
import importlib.util
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
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


class BuildExt(build_ext):
    """``build_ext``, then the GPU library (never failing the build)."""

    def run(self):
        super().run()
        try:
            self.build_cuda()
        except Exception as exc:  # the GPU library is optional: whatever went wrong, install without it
            _warn(f"the CUDA library was not built ({type(exc).__name__}: {exc}); installing without it")
            self._remove(self._cuda_target())

    def _cuda_target(self):
        """Where the library goes: beside the package's sources in place (editable installs),
        else in the build directory."""
        if self.inplace:
            package_dir = self.get_finalized_command("build_py").get_package_dir(CUDA_PACKAGE)
            return Path(package_dir) / CUDA_LIBRARY
        return Path(self.build_lib, *CUDA_PACKAGE.split(".")) / CUDA_LIBRARY

    @staticmethod
    def _remove(path):
        try:
            path.unlink()
        except FileNotFoundError:
            pass

    def build_cuda(self):
        target = self._cuda_target()
        sources = sources_id(HD_SRC)
        if os.environ.get("XLINALG_CUDA", "").strip() == "0":
            self._remove(target)
            _warn("XLINALG_CUDA=0: the CUDA library is not built")
            return
        if sys.platform != "linux":
            self._remove(target)
            _warn(f"the CUDA library is built on Linux only (this is {sys.platform})")
            return
        nvcc = find_nvcc()
        if nvcc is None:
            # a library of the current sources may stay (it was built, with whatever nvcc); any other goes
            if not (target.exists() and f"sources:{sources} ".encode() in target.read_bytes()):
                self._remove(target)
            _warn("no nvcc (XLINALG_NVCC, CUDA_HOME, PATH): the CUDA library is not built")
            return
        version = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=60, check=True).stdout
        command = [
            nvcc, "-std=c++17", "-O3", "-shared", "-Xcompiler", "-fPIC,-fvisibility=hidden", "-cudart", "static",
            *arch_flags(os.environ.get("XLINALG_CUDA_ARCHS") or CUDA_ARCHS),
            *shlex.split(os.environ.get("XLINALG_NVCC_FLAGS", "")),
        ]  # fmt: skip
        build = hashlib.sha256("\0".join([sources, version, *command[1:]]).encode()).hexdigest()[:16]
        if target.exists() and f"sources:{sources} build:{build}".encode() in target.read_bytes():
            return  # up to date
        self._remove(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial.so")  # (ignored by git like the library)
        gencodes = command.count("-gencode")
        command += [f"-DXL_CUDA_SOURCES_ID={sources}", f"-DXL_CUDA_BUILD_ID={build}", "--threads", str(max(1, min(gencodes, os.cpu_count() or 1)))]
        command += split_compile(nvcc)
        command += ["-o", str(partial), str(HD_SRC / "launch.cu")]
        _warn(f"building the CUDA library: {shlex.join(command)}")
        start = time.perf_counter()
        timeout = float(os.environ.get("XLINALG_NVCC_TIMEOUT") or NVCC_TIMEOUT)
        try:
            # a session of its own: on a timeout the whole group (nvcc, cicc, ptxas, the host compiler) is killed
            with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True) as process:
                try:
                    output = process.communicate(timeout=timeout)[0]
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.communicate()
                    raise RuntimeError(f"nvcc took more than XLINALG_NVCC_TIMEOUT={timeout:g} s") from None
            if process.returncode != 0:
                raise RuntimeError(f"nvcc exited with {process.returncode}:\n{output[-4000:]}")
            if output.strip():
                print(output, file=sys.stderr)
            os.replace(partial, target)
        finally:
            self._remove(partial)
        _warn(f"built {target} in {time.perf_counter() - start:.0f} s")

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
