"""The gradient request ("write", "add", "null") of MXNet variables, which MXNet keeps to itself.

MXNet stores a variable's request where only its C++ autograd reads it, and tells it to the
backward pass of native operators but not to extension operators (``mxnet/lib_api.h``), which
always write. The adapter's recorded operator therefore reaches a variable through a recorded
reshape whose backward honours the request; that view costs a node per input and, in the
backward pass, a freshly allocated gradient the reshape copies (at n = 1024 in float32 about a
tenth of a ``gemm``'s forward+backward). It is needed only where the request is not "write".

:func:`watch` observes the two C functions, called through ``mxnet.base._LIB``, that begin and
end what a record describes: ``MXAutogradMarkVariables``, which ``attach_grad``,
``mx.autograd.mark_variables`` and Gluon parameters mark variables with, and ``MXNDArrayFree``,
which releases an NDArray's handle when Python drops it. It replaces those attributes of ``_LIB``
with functions that call the originals, unchanged, and then record each marked variable's
handle with its request, or forget a released handle. So a handle on record is a live NDArray
that was marked with that request (a handle's address is reused only after its release), and
:func:`writes` answers from the record alone. Handles marked before :func:`watch`, made by other
means (a shallow copy shares a variable's autograd state under a new handle), forgotten (the
newest :data:`REMEMBERED` are kept) or marked where MXNet's Cython front end releases handles
without ``_LIB`` are unknown: the adapter keeps the view for them.
"""

from __future__ import annotations

import ctypes

#: How many marked variables are remembered (the oldest are forgotten first).
REMEMBERED = 1 << 16

#: handle address -> request code, for live handles marked since :func:`watch`
_marked: dict[int, int] = {}
_state: dict = {}


def watch() -> None:
    """Start recording the requests of variables marked from now on (once per process; not at
    all where MXNet's NDArrays release their handles other than through ``mxnet.base._LIB``)."""
    if "write" in _state:
        return
    from mxnet.base import _LIB
    from mxnet.ndarray import _internal
    from mxnet.ndarray.ndarray import _GRAD_REQ_MAP

    _state["write"] = _GRAD_REQ_MAP["write"]
    if _internal.NDArrayBase.__module__ != "mxnet._ctypes.ndarray":  # the Cython front end
        return
    mark, free = _LIB.MXAutogradMarkVariables, _LIB.MXNDArrayFree

    def mark_variables(count, variables, requests, gradients):
        status = mark(count, variables, requests, gradients)
        try:
            _record(int(count), variables, requests if status == 0 else None)
        except Exception:  # arguments of an unforeseen kind: those variables stay unknown
            pass
        return status

    def free_ndarray(handle):
        status = free(handle)
        try:
            _marked.pop(_address(handle), None)
        except Exception:  # (at interpreter exit this module may be gone)
            pass
        return status

    _LIB.MXAutogradMarkVariables, _LIB.MXNDArrayFree = mark_variables, free_ndarray


def _address(handle):
    return handle.value if isinstance(handle, ctypes.c_void_p) else handle


def _record(count: int, variables, requests) -> None:
    """Record ``count`` handles with their request codes; forget them where ``requests`` is
    ``None`` (a failed call may have marked some of them)."""
    handles = ctypes.cast(variables, ctypes.POINTER(ctypes.c_void_p))
    for i in range(count):
        _marked.pop(handles[i], None)  # a re-marked handle moves to the newest end
    if requests is None:
        return
    codes = ctypes.cast(requests, ctypes.POINTER(ctypes.c_uint))
    for i in range(count):
        _marked[handles[i]] = codes[i]
    while len(_marked) > REMEMBERED:
        _marked.pop(next(iter(_marked)), None)


def writes(x) -> bool:
    """Whether NDArray ``x`` is known to be a variable marked with grad_req "write"."""
    code = _marked.get(x.handle.value)
    return code is not None and code == _state["write"]


__all__ = ["REMEMBERED", "watch", "writes"]
