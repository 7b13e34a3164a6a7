"""ctypes access to the GPU layer's per-matrix entries as the CPU library compiles them
(``xl_hd_<name>_<f32|f64>``) and to the CPU entries of the same name (``xl_<name>_<f32|f64>``),
for tests.

The parameters come from ``entries.def`` (:mod:`xlinalg.cuda.entries`). The CPU entry of a
name takes the same parameters and, except for those in :data:`NO_THREADS`, a trailing
``int threads``.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np

from xlinalg import lapack
from xlinalg.cuda.entries import entries

#: The CPU entries without a trailing ``threads`` parameter.
NO_THREADS = frozenset({"sumlogdiag", "sumlogdiag_vjp"})

_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


def parameters(name: str) -> list[tuple[str, str]]:
    """``[(kind, name), ...]``: the C parameters of the entry ``name`` (without ``threads``);
    kinds ``array`` (``T*``: a C-contiguous array of the entry's dtype), ``status``
    (``int32_t*``: a C-contiguous int32 array) or the scalar's C type."""
    return [("status" if p.type == "int32_t*" else "array" if p.pointer else p.type, p.name) for p in entries()[name].params]


@functools.cache
def _cdll():
    lib = lapack.library()  # sets the CPU entries' BLAS/LAPACK routines
    if lib is None:
        raise RuntimeError("the compiled kernel layer is not active")
    return ctypes.CDLL(lib.__file__)


@functools.cache
def entry(name: str, dtype, cpu: bool = False):
    """The ctypes function ``xl_hd_<name>_<S>`` (``cpu``: the CPU entry ``xl_<name>_<S>``) with
    its argument types set.

    Parameters
    ----------
    name : str
        An entry of ``entries.def``.
    dtype : dtype-like
        float32 or float64.
    cpu : bool
        The CPU library's entry instead of the per-matrix code's.
    """
    suffix = _SUFFIX[np.dtype(dtype)]
    fn = getattr(_cdll(), f"xl_{name}_{suffix}" if cpu else f"xl_hd_{name}_{suffix}")
    argtypes = [p.ctype for p in entries()[name].params]
    if cpu and name not in NO_THREADS:
        argtypes.append(ctypes.c_int)
    fn.argtypes = argtypes
    fn.restype = None
    return fn


def call(name: str, dtype, *, cpu: bool = False, **values) -> None:
    """Call an entry with its parameters given by name (NumPy arrays for pointers; the CPU
    entry runs on one thread).

    Parameters
    ----------
    name : str
        An entry of ``entries.def``.
    dtype : dtype-like
        float32 or float64: the entry's type, and that of every ``array`` parameter.
    cpu : bool
        Call the CPU entry ``xl_<name>_<S>`` instead of ``xl_hd_<name>_<S>``.
    **values
        One value per parameter of the entry.

    Raises
    ------
    TypeError
        On a missing or unknown parameter, or an array of the wrong dtype or layout.
    """
    params = parameters(name)
    names = [p for _, p in params]
    if set(values) != set(names):
        raise TypeError(f"{name} takes {names}, got {sorted(values)}")
    args = []
    for kind, pname in params:
        value = values[pname]
        if kind in ("array", "status"):
            want = np.dtype(np.int32) if kind == "status" else np.dtype(dtype)
            if not isinstance(value, np.ndarray) or value.dtype != want or not value.flags.c_contiguous:
                raise TypeError(f"{name}: {pname} must be a C-contiguous {want} array")
            args.append(value.ctypes.data)
        else:
            args.append(value)
    if cpu and name not in NO_THREADS:
        args.append(1)
    entry(name, np.dtype(dtype), cpu)(*args)
