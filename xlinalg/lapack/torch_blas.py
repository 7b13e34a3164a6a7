"""Which BLAS/LAPACK the PyTorch autograd node calls: SciPy's OpenBLAS, or torch's own MKL.

Every library of the layer takes its routines from SciPy (:func:`xlinalg.lapack.build.set_routines`).
In a torch process a second library is at hand: torch's Linux x86-64 builds carry Intel's MKL and
export its Fortran ``?gemm``, ``?gemm_batch``, ``?trsm``, ``?potrf``, ``?potri``, ``?syevd``,
``?getrf``, ``?geqrf`` and ``?orgqr`` (not ``?trmm``, ``?syrk``, ``?getri``). Which is faster
depends on the CPU: on an Intel Xeon (family 6, model 207, one thread) MKL took 0.18 ms for
``dpotrf`` at n = 256 against OpenBLAS's 0.38, 0.30 against 1.07 ms for ``dtrsm``, 29.9 against
31.9 ms for ``dgemm`` at n = 1024; on an AMD EPYC (Zen 5) OpenBLAS's ``dpotrf`` was 2.3–4×
faster than MKL's. MKL also
runs on the OpenMP threads torch's own operators use, so with several threads it takes the
second core where OpenBLAS would compete with torch's pool.

``XLINALG_TORCH_BLAS`` (read when the node loads) chooses: ``auto`` (default: torch's MKL on an
Intel CPU where torch has it, else SciPy's), ``mkl`` (torch's MKL wherever it has it) or
``scipy``. With MKL the node calls the library whole (``xl_set_blas_called_whole``): products
and solves in one call each, threaded by MKL, a Cholesky forward by its ``potrf``, inverses from
LU factors by its solves, and every eager call at every order takes the node
(:func:`xlinalg.lapack.torch_node.blas_on_torch_threads`). Only the autograd node of eager calls
changes; the ``torch.library`` operators of compiled and transformed code, and every other
framework, keep SciPy's routines.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

#: The routines torch's MKL exports (``s``/``d`` + name + ``_``) that replace SciPy's (or, as
#: ``?gemm_batch``, which SciPy's BLAS lacks, add to them).
MKL_ROUTINES = ("gemm", "gemm_batch", "trsm", "potrf", "potri", "syevd", "getrf", "geqrf", "orgqr")

_CHOICES = ("auto", "mkl", "scipy")


def choice() -> str:
    """``XLINALG_TORCH_BLAS``: ``"auto"``, ``"mkl"`` or ``"scipy"``."""
    value = os.environ.get("XLINALG_TORCH_BLAS", "auto").strip().lower() or "auto"
    if value not in _CHOICES:
        raise ValueError(f"XLINALG_TORCH_BLAS must be one of {', '.join(_CHOICES)}, got {value!r}")
    return value


def cpu_vendor() -> str | None:
    """The CPU's vendor as Linux names it (``"GenuineIntel"``, ``"AuthenticAMD"``), or ``None``
    where ``/proc/cpuinfo`` does not say."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("vendor_id"):
            return line.split(":", 1)[1].strip()
    return None


def wants_mkl(setting: str, vendor: str | None) -> bool:
    """Whether the node is to take torch's MKL (where torch has it) under ``setting``
    (:func:`choice`) on a CPU of ``vendor``: ``mkl``, or ``auto`` on an Intel CPU."""
    return setting == "mkl" or (setting == "auto" and vendor == "GenuineIntel")


def mkl_routines() -> tuple[dict, str]:
    """``({name: address}, description)``: the routines of :data:`MKL_ROUTINES` (both
    precisions) in torch's MKL when the setting and the CPU ask for it (:func:`wants_mkl`) and
    torch has MKL, with a description of the BLAS the node then calls; else ``({}, why)``."""
    setting = choice()
    vendor = cpu_vendor()
    if not wants_mkl(setting, vendor):
        why = "XLINALG_TORCH_BLAS=scipy" if setting == "scipy" else f"{vendor or 'an unknown'} CPU, where it is the faster"
        return {}, f"SciPy's ({why})"
    import torch

    if not torch.backends.mkl.is_available():
        return {}, "SciPy's (this torch has no MKL)"
    try:
        lib = _libtorch_cpu()
        version = ctypes.create_string_buffer(256)
        lib.MKL_Get_Version_String(version, len(version))
        routines = {p + name: ctypes.cast(getattr(lib, f"{p}{name}_"), ctypes.c_void_p).value for name in MKL_ROUTINES for p in "sd"}
    except (OSError, AttributeError) as exc:
        return {}, f"SciPy's (torch's MKL routines are not found: {exc})"
    words = version.value.decode(errors="replace").split()
    release = next((w for w in words if w[:1].isdigit()), "").split("-")[0]
    return routines, f"torch's MKL {release} for {', '.join(MKL_ROUTINES)}; SciPy's for the rest"


def mkl_local_threads() -> int:
    """The address of torch's MKL's ``MKL_Set_Num_Threads_Local`` (the calling thread's thread
    count), 0 where torch has none."""
    try:
        return ctypes.cast(_libtorch_cpu().MKL_Set_Num_Threads_Local, ctypes.c_void_p).value or 0
    except (OSError, AttributeError):
        return 0


def _libtorch_cpu():
    """The installed torch's ``libtorch_cpu.so`` (the handle torch already loaded)."""
    import torch

    return ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
