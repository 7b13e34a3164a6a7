"""Kernel tables: the primitives the Array API standard lacks, per array library.

``kernels_for(xp)`` returns the table for a namespace. Library tables are imported lazily,
only when arrays of that library are seen, so importing xlinalg imports no framework.
(MXNet's table, :mod:`xlinalg.kernels.mxnet`, is chosen by the MXNet adapter: its arrays reach
the core as NumPy arrays.)
"""

from __future__ import annotations

import importlib

import array_api_compat as _compat

from .portable import Kernels

#: (predicate name in array_api_compat, module:class) in the order they are tried.
_TABLES = [
    ("is_numpy_namespace", "xlinalg.kernels.numpy:NumpyKernels"),
    ("is_torch_namespace", "xlinalg.kernels.torch:TorchKernels"),
    ("is_jax_namespace", "xlinalg.kernels.jax:JaxKernels"),
    ("is_cupy_namespace", "xlinalg.kernels.cupy:CupyKernels"),
]
_cache: dict[int, Kernels] = {}


def kernels_for(xp) -> Kernels:
    """The kernel table for the Array API namespace ``xp`` (portable when none is known)."""
    key = id(xp)
    table = _cache.get(key)
    if table is None:
        table = _load(xp)
        _cache[key] = table
    return table


def _load(xp) -> Kernels:
    for predicate, target in _TABLES:
        if getattr(_compat, predicate)(xp):
            module, cls = target.split(":")
            try:
                return getattr(importlib.import_module(module), cls)(xp)
            except ModuleNotFoundError as exc:
                if exc.name != module:  # the library table exists but failed to import
                    raise
    return Kernels(xp)


__all__ = ["Kernels", "kernels_for"]
