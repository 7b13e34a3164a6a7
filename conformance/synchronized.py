"""Errors charged to the operation that caused them.

An asynchronous library (MXNet's engine, CUDA streams) returns from a call before the work is
done, and an error in that work surfaces at a later synchronization point: possibly while the
suite is already checking another sample or error case, which would then be blamed. The checks
therefore see every backend through :class:`SynchronizedBackend`, which calls the backend's
``synchronize()`` right after each operation that makes arrays, so a deferred error is raised by
— and charged to — the operation that caused it.
"""

from __future__ import annotations

#: the backend methods that start work on the library's side (and may fail later)
OPERATIONS = ("asarray", "call", "vjp", "jvp", "vmap", "grad_of_vjp", "accumulate_vjp", "partial_vjp")


class SynchronizedBackend:
    """``backend`` with ``synchronize()`` called after each of its :data:`OPERATIONS`; every
    other attribute (``name``, ``capabilities``, ``to_numpy``, ...) is the backend's own."""

    def __init__(self, backend):
        self.wrapped = backend

    def __getattr__(self, attr):
        value = getattr(self.wrapped, attr)
        if attr not in OPERATIONS or not callable(value):
            return value
        sync = getattr(self.wrapped, "synchronize", None)
        if sync is None:  # a third-party backend without the method: nothing to wait for
            return value

        def synchronized(*args, **kwargs):
            out = value(*args, **kwargs)
            sync()
            return out

        return synchronized

    def __repr__(self):
        return f"<synchronized {self.wrapped!r}>"


def synchronized(backend):
    """``backend`` wrapped in a :class:`SynchronizedBackend` (once; ``None`` stays ``None``)."""
    if backend is None or isinstance(backend, SynchronizedBackend):
        return backend
    return SynchronizedBackend(backend)
