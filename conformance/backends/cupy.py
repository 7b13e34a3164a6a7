"""CuPy: the NumPy-style API (:func:`xlinalg.vjp`, :func:`xlinalg.jvp`) on arrays in GPU memory.

``--backend cupy`` runs on the current CUDA device; CuPy works asynchronously, so
:meth:`CupyBackend.synchronize` waits for the device after each operation (a deferred error is
charged to the call that caused it).
"""

from __future__ import annotations

import numpy as np

from . import CoreRulesBackend


class CupyBackend(CoreRulesBackend):
    name = "cupy"

    def available(self):
        try:
            import cupy
        except ImportError as exc:
            return f"cupy is not installed ({exc})"
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # no driver: cupy.cuda.runtime.CUDARuntimeError
            return f"CuPy sees no CUDA device ({type(exc).__name__}: {exc})"
        return None if count else "CuPy sees no CUDA device"

    def asarray(self, x):
        import cupy

        return cupy.array(np.array(x, copy=True))

    def to_numpy(self, y):
        import cupy

        return cupy.asnumpy(y) if isinstance(y, cupy.ndarray) else np.array(np.asarray(y), copy=True)

    def dtype_name(self, y):
        return str(y.dtype)

    def device(self, y):
        return getattr(y, "device", None)

    def foreign(self, x):
        return np.array(x, copy=True)

    def synchronize(self):
        import cupy

        cupy.cuda.Device().synchronize()


BACKEND = CupyBackend()
