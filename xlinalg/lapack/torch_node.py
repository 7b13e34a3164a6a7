"""Eager PyTorch calls on the CPU layer through one C++ autograd node.

A ``torch.autograd.Function`` costs tens of microseconds of Python per call, in the forward and
again in the backward pass: more than the kernels themselves below order 32 or so. For eager CPU
calls the torch adapter (:mod:`xlinalg.adapters.torch`) runs the operator's forward entry
(:mod:`xlinalg.lapack.table`) through ``src/torch_node.cpp`` instead: it allocates the outputs,
runs the entry and, when autograd records the call, gives the outputs a C++ node whose backward
runs the VJP entry without Python. Inputs and outputs are saved as ``SavedVariable``s
(saved-tensor hooks and the in-place version check apply); a recorded call that will be
differentiated keeps the residuals of :data:`~xlinalg.lapack.table.SAVING`. The module
remembers each call's signature (:func:`forward`); the adapter runs a later call with the same
signature through :func:`fast_path`, with no Python between the user's call and the kernel
(a call on 4 × 4 matrices: 14 → 5 µs, torch's own 3–8 µs). A backward pass
that is itself recorded (``create_graph=True``) runs the composed rules instead (the fallback of
:func:`set_hooks`), so higher orders stay exact. Batches of 32768 elements or more run in parts
on torch's own intra-op threads (``at::parallel_for``), each part an entry call on one thread;
a single matrix (or a smaller batch) has those threads as its team, which runs its large
``gemm``/``trsm``/``trmm`` calls in parts (``src/blas.hpp``; :func:`team_splits` counts them).
On Intel CPUs the module calls torch's own MKL for most routines (:mod:`.torch_blas`), whole:
MKL threads them on the same threads.

Like the XLA FFI handlers, the module is compiled on first use, against the installed torch's
headers, into the cache of :mod:`xlinalg.lapack.build` (``torch_node.cpp`` with ``entries.cpp``;
about 25 s on two cores, once per machine and torch version). :func:`library` is ``None`` where
the layer is off or the module cannot be built (:func:`reason`); the adapter then runs its
``autograd.Function`` on the same kernels. ``XLINALG_KERNELS=compiled`` makes a failed build an
``ImportError``.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import importlib.util
import sysconfig
from dataclasses import dataclass, field

from . import _state as _layer
from . import build, mode, torch_blas
from .build import SRC
from .table import PRODUCTS, SAVING, TABLE, Entry

#: Compiled together into one Python extension module (the node calls the C ABI of entries.cpp).
SOURCES = ("torch_node.cpp", "entries.cpp")
MODULE = "xlinalg_torch_node"

_state: dict = {}


@dataclass(frozen=True)
class Plan:
    """A call's entries as the module takes them: the rows of the forward and VJP entries, the
    forward's operands (indices of the inputs, -1 absent), how many outputs the user gets, the
    VJP's operands (indices into inputs, forward outputs with residuals, cotangents), the
    names of the entries' integer and float parameters, the node's name, and the inputs whose
    cotangents the node forms from an output's (``Entry.scaled_cotangents``)."""

    spec: Entry
    forward_row: int
    forward_operands: list
    outputs: int
    vjp_row: int
    vjp_operands: list
    forward_params: tuple
    vjp_params: tuple
    node_name: str
    scaled_cotangents: tuple = ()
    #: parameter values -> both entries' integer and float parameters
    memo: dict = field(default_factory=dict, compare=False, repr=False)

    def parameters(self, params: dict) -> tuple:
        """``(ints, floats, vjp ints, vjp floats, scaled)``: the entries' parameters for a call,
        with ``threads`` 1 (the module splits batches itself), and ``(input, output, factor)``
        for each of :attr:`scaled_cotangents`."""
        key = tuple(params.values())
        hit = self.memo.get(key)
        if hit is None:
            attrs = {**self.spec.attrs(params), "threads": 1}
            hit = tuple(
                [kind(attrs[n]) for n in names]
                for entry in (self.forward_params, self.vjp_params)
                for kind, names in zip((int, float), entry)
            ) + ([(i, j, float(attrs[name])) for i, j, name in self.scaled_cotangents],)
            if len(self.memo) < 256:
                self.memo[key] = hit
        return hit


def plan(op, saving: bool) -> Plan | None:
    """The :class:`Plan` of the registered operator ``op`` (``saving``: the variant that keeps
    residuals, where there is one), or ``None`` when it has no entries or the module is off."""
    key = (op.name, saving)
    hit = _state.get("plans", {}).get(key)
    if hit is not None and hit[0] is op:
        return hit[1]
    module = library()
    from ..core.operator import operators

    spec = (saving and SAVING.get(op.name)) or TABLE.get(op.name) or PRODUCTS.get(op.name)
    if module is None or spec is None or operators().get(op.name) is not op:
        result = None
    else:
        n_in, n_out = len(op.args), len(op.outputs)
        n_written = n_out + spec.residuals
        inputs, outputs = range(n_in), range(n_in, n_in + n_written)
        cotangents = range(n_in + n_written, n_in + n_written + n_out)
        index = [-1 if k is None else k for k in spec.forward_args(inputs)]
        vjp = [-1 if k is None else k for k in spec.vjp_args(inputs, outputs, cotangents)]
        fwd, rev = spec.entry("forward"), spec.entry("vjp")
        result = Plan(
            spec, module.row(fwd), index, n_out, module.row(rev), vjp, module.parameters(fwd), module.parameters(rev),
            f"{op.name.capitalize()}Backward", spec.scaled_cotangents,
        )
    _state.setdefault("plans", {})[key] = (op, result)
    return result


def forward(call, plan: Plan, single_blas: bool, context, signature=None) -> tuple:
    """``(outputs, status)`` of ``plan``'s forward entry on the prepared ``call`` (CPU tensors;
    ``status``: ``None`` unless a batch entry failed); recorded, the outputs get the node
    (``single_blas``: its reverse puts the BLAS on one thread first). The BLAS runs on one
    thread; the module splits large batches, or one matrix's large BLAS calls, across torch's
    threads. ``context`` goes to the fallback of a recorded backward pass. ``signature``
    (``(operator key, arrays, keyword parameters)``, the user's call, where its arrays are the
    call's inputs): a call that succeeds is remembered under it, and :func:`fast_path` runs the
    next call with the same signature with no Python."""
    ints, floats, vints, vfloats, scaled = plan.parameters(call.params)
    lib = _state["library"]  # loaded: a plan exists
    entries = lib.plan(
        plan.node_name, plan.forward_row, plan.forward_operands, plan.outputs, ints, floats, plan.vjp_row,
        plan.vjp_operands, vints, vfloats, scaled, single_blas, context, call.op.multiple_outputs,
    )
    out = lib.forward(list(call.inputs), entries)
    if len(out) > plan.outputs:
        return tuple(out[:-1]), out[-1]
    if signature is not None and lib.remember(*signature, entries):
        _state["remembering"] = True
    return tuple(out), None


def fast_path():
    """The module's ``call(operator key, arrays, keyword parameters, failed)`` — the outputs of a
    call whose signature :func:`forward` remembered, else ``None``; where a batch entry failed,
    what ``failed(arrays, keyword parameters, outputs, status)`` returns (it raises) — while
    remembered calls may run as remembered: the layer is on and SciPy's BLAS on one thread;
    else ``None``."""
    if not _state.get("remembering") or mode() == "python" or _layer.get("blas_threads") != 1:
        return None
    return _state["library"].call


def forget() -> None:
    """Forget the remembered signatures (the next call of each takes the Python path again)."""
    if _state.get("library") is not None:
        _state["library"].forget()


def team_splits() -> int:
    """How many BLAS calls the module has run in parts since it loaded (0 while not loaded)."""
    lib = _state.get("library")
    return 0 if lib is None else lib.team_splits()


def set_hooks(fallback, single_blas) -> None:
    """The module's Python hooks, given to it when it loads (at once if it has):
    ``fallback(context, inputs, outputs, cotangents)``, the differentiable input cotangents of
    a recorded backward pass, and ``single_blas()``, which puts the BLAS on one thread."""
    _state["hooks"] = (fallback, single_blas)
    if _state.get("library") is not None:
        _state["library"].set_hooks(fallback, single_blas)


# ---- the library ------------------------------------------------------------------------------
def library():
    """The module, built on first use; ``None`` where the layer is off or it cannot be built.

    Raises
    ------
    ImportError
        With ``XLINALG_KERNELS=compiled`` when it cannot be loaded, saying why.
    ValueError
        When ``XLINALG_TORCH_BLAS`` is none of ``auto``, ``mkl``, ``scipy``.
    """
    if "library" not in _state:
        torch_blas.choice()  # a bad XLINALG_TORCH_BLAS is an error, not a silent fallback
    return build.first_use(_state, "the PyTorch autograd node", _load)


def reason() -> str:
    """Why :func:`library` is ``None`` (``"loaded"`` when it is not)."""
    return build.why_missing(_state, library)


def blas() -> str | None:
    """The BLAS/LAPACK the module calls (:func:`xlinalg.lapack.torch_blas.mkl_routines`), once
    loaded; else ``None``."""
    return _state.get("blas") if _state.get("library") is not None else None


def blas_on_torch_threads() -> bool:
    """Whether the loaded module calls a BLAS/LAPACK that runs on torch's own threads (torch's
    MKL): then its LAPACK-bound calls need no BLAS threads of SciPy's either, and every eager
    call at every order takes the module."""
    return _state.get("library") is not None and _state.get("called_whole", False)


def _load():
    import torch
    from torch.utils import cpp_extension

    includes = [*cpp_extension.include_paths(), sysconfig.get_paths()["include"]]
    libdirs = cpp_extension.library_paths()
    abi = int(bool(torch._C._GLIBCXX_USE_CXX11_ABI))
    # OpenMP: at::parallel_for is inline in torch's headers; the OpenMP runtime already loaded
    # with torch (the same soname) runs it, on torch's own threads
    flags = (*build.COMPILE_FLAGS, "-fopenmp", f"-D_GLIBCXX_USE_CXX11_ABI={abi}", "-DTORCH_API_INCLUDE_EXTENSION_H")
    link = (*(f"-L{d}" for d in libdirs), *(f"-Wl,-rpath,{d}" for d in libdirs), "-fopenmp", "-lc10", "-ltorch", "-ltorch_cpu", "-ltorch_python")
    target, why = build.cached_library(
        "xlinalg_torch", "PyTorch autograd node", [SRC / s for s in SOURCES], includes, (torch.__version__,), flags, link
    )
    if target is None:
        return None, why
    try:
        loader = importlib.machinery.ExtensionFileLoader(MODULE, str(target))
        spec = importlib.util.spec_from_file_location(MODULE, str(target), loader=loader)
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
        replacements, _state["blas"] = torch_blas.mkl_routines()
        lib = ctypes.CDLL(str(target))  # the handle the import opened: the same globals
        build.set_routines(lib, replacements)
        _state["called_whole"] = bool(replacements)
        lib.xl_set_blas_called_whole(int(_state["called_whole"]))
        lib.xl_set_blas_local_threads(ctypes.c_void_p(torch_blas.mkl_local_threads() if replacements else None))
        if "hooks" in _state:
            module.set_hooks(*_state["hooks"])
    except (OSError, AttributeError, KeyError, ValueError, ImportError, RuntimeError) as exc:
        return None, f"cannot load {target} ({type(exc).__name__}: {exc})"
    return module, "loaded"
