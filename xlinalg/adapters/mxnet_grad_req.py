"""The gradient request ("write", "add", "null") of MXNet variables, which MXNet keeps to itself.

MXNet stores a variable's request where only its C++ autograd reads it, and tells it to the
backward pass of native operators but not to extension operators (``mxnet/lib_api.h``), which
always write. The adapter's recorded operator therefore reaches a variable through a recorded
reshape whose backward honours the request; that view costs a node per input and, in the
backward pass, a freshly allocated gradient the reshape copies (at n = 1024 in float32 about a
tenth of a ``gemm``'s forward+backward). It is needed only where the request is not "write".

:func:`watch` observes MXNet's one entry point that sets requests,
``MXAutogradMarkVariables`` (``attach_grad``, ``mx.autograd.mark_variables`` and Gluon
parameters all call it through ``mxnet.base._LIB``): it replaces that attribute of ``_LIB`` with
a function that calls the original, unchanged, and then records each marked variable's handle,
data address and request. :func:`writes` answers for an NDArray only from such a record, and
only while its handle and data address both still match it; variables marked before
:func:`watch`, by other means, or forgotten (the newest :data:`REMEMBERED` are kept) are
unknown, and the adapter keeps the view for them.
"""

from __future__ import annotations

import ctypes

#: How many marked variables are remembered (the oldest are forgotten first).
REMEMBERED = 1 << 16

_NAME = "MXAutogradMarkVariables"
#: handle address -> (data address, request code)
_marked: dict[int, tuple[int, int]] = {}
_state: dict = {}


def watch() -> None:
    """Start recording the requests of variables marked from now on (once per process)."""
    from mxnet.base import _LIB
    from mxnet.ndarray.ndarray import _GRAD_REQ_MAP

    if "write" in _state:
        return
    original = getattr(_LIB, _NAME)

    def mark_variables(count, variables, requests, gradients):
        status = original(count, variables, requests, gradients)
        if status == 0:
            try:
                _record(_LIB, int(count), variables, requests)
            except Exception:  # arguments of an unforeseen kind: those variables stay unknown
                pass
        return status

    _state["write"], _state["lib"] = _GRAD_REQ_MAP["write"], _LIB
    setattr(_LIB, _NAME, mark_variables)


def _record(lib, count: int, variables, requests) -> None:
    handles = ctypes.cast(variables, ctypes.POINTER(ctypes.c_void_p))
    codes = ctypes.cast(requests, ctypes.POINTER(ctypes.c_uint))
    for i in range(count):
        handle = handles[i]
        _marked.pop(handle, None)  # re-marked: the newest record, last in order
        _marked[handle] = (_data_address(lib, handle), codes[i])
    while len(_marked) > REMEMBERED:
        del _marked[next(iter(_marked))]


def _data_address(lib, handle) -> int:
    address = ctypes.c_void_p()
    if lib.MXNDArrayGetData(ctypes.c_void_p(handle), ctypes.byref(address)) != 0:
        return -1  # matches no array
    return address.value or 0


def writes(x) -> bool:
    """Whether NDArray ``x`` is known to be a variable marked with grad_req "write"."""
    record = _marked.get(x.handle.value)
    if record is None or record[1] != _state["write"]:
        return False
    return record[0] == _data_address(_state["lib"], x.handle.value)


__all__ = ["REMEMBERED", "watch", "writes"]
