"""Kernel tables: the primitives the Array API standard lacks, per array library.

``kernels_for(xp)`` returns the table for a namespace. Library tables are imported lazily,
only when arrays of that library are seen, so importing xlinalg imports no framework.
Framework adapters add their table with :func:`register_table`.
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


def register_table(predicate, target: str) -> None:
    """Register ``module:Class`` for namespaces where ``predicate(xp)`` holds."""
    _TABLES.insert(0, (predicate, target))
    _cache.clear()


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
        test = getattr(_compat, predicate) if isinstance(predicate, str) else predicate
        if test(xp):
            module, cls = target.split(":")
            try:
                return getattr(importlib.import_module(module), cls)(xp)
            except ModuleNotFoundError as exc:
                if exc.name != module:  # the library table exists but failed to import
                    raise
    return Kernels(xp)


__all__ = ["Kernels", "kernels_for", "register_table"]
