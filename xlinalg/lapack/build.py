"""Libraries of the compiled layer that are built on first use, into a per-user cache.

``pip install`` builds the extension :mod:`xlinalg.lapack._kernels` in an isolated environment,
without the frameworks. Code that compiles against a framework's own headers (the XLA FFI
handlers for JAX, the recorded operator for MXNet) is therefore compiled in the process that
first needs it, by the system C++ compiler (``$CXX``, else ``g++``/``c++``), into
``$XLINALG_CACHE_DIR`` (default ``~/.cache/xlinalg``) under a name keyed by the sources, the
framework version and the compiler: one machine compiles each library once and every later
process only loads it. Concurrent builds are safe (each links into a temporary file renamed
into place).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).parent / "src"
COMPILE_FLAGS = ("-std=c++17", "-O3", "-g0", "-fPIC", "-fvisibility=hidden", "-fopenmp-simd")
LINK_FLAGS = ("-shared", "-pthread") + (("-Wl,-Bsymbolic",) if sys.platform.startswith("linux") else ())

#: Libraries older than this that no current build produced are removed from the cache.
_STALE_SECONDS = 7 * 86400


def cache_dir() -> Path:
    """Where built libraries are kept: ``$XLINALG_CACHE_DIR`` or ``~/.cache/xlinalg``."""
    return Path(os.environ.get("XLINALG_CACHE_DIR") or Path.home() / ".cache" / "xlinalg")


def compiler() -> str | None:
    """The C++ compiler: ``$CXX`` (its first word), else ``g++`` or ``c++`` on the ``PATH``."""
    cxx = os.environ.get("CXX", "").split()
    if cxx:
        return shutil.which(cxx[0])
    return shutil.which("g++") or shutil.which("c++")


def cached_library(
    stem: str, what: str, sources, includes, key_parts=(), flags=COMPILE_FLAGS, link=()
) -> tuple[Path | None, str]:
    """The path of the library ``<stem>-<key>.so`` built from ``sources`` (paths) with the
    header folders ``includes``, the compiler ``flags`` and the further linker arguments
    ``link`` (libraries to link against), building it when the cache does not hold it yet.

    ``key_parts`` (strings: versions of what the sources are compiled against) go into the
    key with the sources, every header of :data:`SRC`, the compiler and the flags. Returns
    ``(path, "loaded")``, or ``(None, why)`` naming ``what`` failed and why.
    """
    sources = [Path(s) for s in sources]
    missing = [str(s) for s in sources if not s.is_file()]
    if missing:
        return None, f"the sources of the {what} are not installed ({', '.join(missing)} missing)"
    cxx = compiler()
    if cxx is None:
        return None, f"no C++ compiler ($CXX, g++ or c++) to build the {what}"
    try:
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"the C++ compiler {cxx} does not run ({exc})"
    key = hashlib.sha256()
    try:
        for path in [*sources, *sorted(SRC.glob("*.h")), *sorted(SRC.glob("*.hpp"))]:
            key.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    except OSError as exc:
        return None, f"cannot read the sources of the {what} ({exc})"
    for part in (*key_parts, cxx, version, *flags, *LINK_FLAGS, *link):
        key.update(part.encode() + b"\0")
    target = cache_dir() / f"{stem}-{key.hexdigest()[:20]}.so"
    if target.is_file():
        try:
            os.utime(target)  # in use: kept by _prune
        except OSError:
            pass
    else:
        why = _build(cxx, [*flags, "-I", str(SRC)], sources, includes, target, what, list(link))
        if why is not None:
            return None, why
    return target, "loaded"


def _build(cxx: str, flags: list, sources, includes, target: Path, what: str, link: list) -> str | None:
    """Compile into ``target`` (the sources in parallel, then a link into a temporary file
    renamed into place: concurrent builds never see a partial library); an error message, or
    ``None``."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    except OSError as exc:
        return f"cannot write the cache directory {target.parent} ({exc}); set XLINALG_CACHE_DIR"
    flags = [*flags, *(f for include in includes for f in ("-isystem", str(include)))]
    try:
        objects, procs = [], []
        for source in sources:
            obj = work / (source.stem + ".o")
            cmd = [cxx, *flags, "-c", str(source), "-o", str(obj)]
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
            objects.append(str(obj))
        failed = []
        for source, proc in zip(sources, procs):
            out, _ = proc.communicate(timeout=600)
            if proc.returncode != 0:
                failed.append(f"{source.name}: {out.strip()[-2000:]}")
        if failed:
            return f"building the {what} failed: " + "; ".join(failed)
        tmp = work / target.name
        link = subprocess.run([cxx, *objects, *LINK_FLAGS, *link, "-o", str(tmp)], capture_output=True, text=True, timeout=600)
        if link.returncode != 0:
            return f"linking the {what} failed: {(link.stdout + link.stderr).strip()[-2000:]}"
        os.replace(tmp, target)
        _prune(target)
        return None
    except (OSError, subprocess.SubprocessError) as exc:
        return f"building the {what} failed ({type(exc).__name__}: {exc})"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _prune(keep: Path) -> None:
    """Remove what earlier builds left in the cache: libraries of the same stem (other sources,
    framework versions or compilers) not built or used for a week, and folders of interrupted builds."""
    stem = keep.name.rsplit("-", 1)[0] + "-"
    now = time.time()
    for path in keep.parent.iterdir():
        try:
            age = now - path.stat().st_mtime
            if path.name.startswith(stem) and path.suffix == ".so" and path != keep and age > _STALE_SECONDS:
                path.unlink()
            elif path.name.startswith(".build-") and path.is_dir() and age > 3600:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


def set_routines(lib, replacements=None) -> None:
    """SciPy's BLAS/LAPACK (the ``__pyx_capi__`` capsules of ``scipy.linalg.cython_blas`` and
    ``cython_lapack``) into the pointer table of ``lib``, a ``ctypes.CDLL`` of a library built
    with ``entries.cpp``, but for the routines of ``replacements`` (``{"dgemm": address}``:
    another library's, with the same Fortran interface and LP64 integers, which may add routines
    SciPy lacks, such as ``dgemm_batch``), and SciPy's BLAS's thread count functions
    (:func:`xlinalg.lapack.set_blas_thread_functions`)."""
    from . import ROUTINES

    # Private prototypes: setting argtypes on ctypes.pythonapi's functions would change them
    # for every other user in the process.
    get_name = ctypes.PYFUNCTYPE(ctypes.c_char_p, ctypes.py_object)(("PyCapsule_GetName", ctypes.pythonapi))
    get_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
        ("PyCapsule_GetPointer", ctypes.pythonapi)
    )
    set_routine = lib.xl_set_routine
    set_routine.argtypes, set_routine.restype = [ctypes.c_char_p, ctypes.c_void_p], ctypes.c_int
    for module, names in ROUTINES.items():
        capi = importlib.import_module(f"scipy.linalg.{module}").__pyx_capi__
        for name in names:
            for prefix in "sd":
                capsule = capi[prefix + name]
                pointer = (replacements or {}).get(prefix + name) or get_pointer(capsule, get_name(capsule))
                if not pointer or set_routine((prefix + name).encode(), pointer) != 0:
                    raise ValueError(f"cannot set {prefix + name}")
    scipys = {prefix + name for names in ROUTINES.values() for name in names for prefix in "sd"}
    for name, pointer in (replacements or {}).items():
        if name not in scipys and (not pointer or set_routine(name.encode(), pointer) != 0):
            raise ValueError(f"cannot set {name}")
    lib.xl_ready.restype = ctypes.c_int
    if not lib.xl_ready():
        raise ValueError("some BLAS/LAPACK routine is missing")
    from . import set_blas_thread_functions

    set_blas_thread_functions(lib)


def first_use(state: dict, what: str, load):
    """A library of the compiled layer loaded on first use: ``load()`` (returning ``(library,
    "loaded")`` or ``(None, why)``) runs once, its result kept in ``state`` (``"library"``,
    ``"reason"``). ``None`` where the layer is off (``XLINALG_KERNELS=python``, or the
    extension missing in ``auto`` mode) or ``load`` fails.

    Raises
    ------
    ImportError
        With ``XLINALG_KERNELS=compiled`` when the library is missing, naming ``what`` and why.
    """
    from . import _state as layer
    from . import library as extension
    from . import mode

    if mode() == "python":
        return None
    if "library" not in state:
        try:
            ext = extension()
        except ImportError as exc:
            ext, why = None, str(exc)
        else:
            why = layer.get("reason")
        if ext is None:
            state["library"], state["reason"] = None, f"the compiled kernel layer is off ({why})"
        else:
            try:
                state["library"], state["reason"] = load()
            except Exception as exc:  # whatever goes wrong, auto mode runs without the library
                state["library"], state["reason"] = None, f"{type(exc).__name__}: {exc}"
    lib = state["library"]
    if lib is None and mode() == "compiled":
        raise ImportError(f"XLINALG_KERNELS=compiled, but {what} cannot be loaded: {state['reason']}")
    return lib


def why_missing(state: dict, library) -> str:
    """Why the library that ``library()`` loads through :func:`first_use` into ``state`` is
    ``None`` (``"loaded"`` when it is not), loading it if no call has yet."""
    from . import mode

    if mode() == "python":
        return "XLINALG_KERNELS=python"
    if "library" not in state:
        try:
            library()
        except ImportError:
            pass
    return state.get("reason", "not loaded")
