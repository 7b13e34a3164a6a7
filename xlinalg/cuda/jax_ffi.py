"""The GPU kernel layer for JAX: XLA FFI handlers for the CUDA platform.

Every operator of :data:`xlinalg.cuda.rules.RULES` gets, for float32 and float64, a forward and a
VJP handler registered as the CUDA custom-call target of the same name as the CPU handler of
:mod:`xlinalg.lapack.jax_ffi` (``xl_ffi_potrf_f32``, ``xl_ffi_potrf_vjp_f32``, ...): one
``jax.ffi.ffi_call`` then lowers to the CPU handler on the CPU and to this one on a GPU. The
handlers take the CPU handlers' operands, results and attributes (:data:`~xlinalg.lapack.jax_ffi.TABLE`:
forward operands the inputs, VJP operands its ``vjp_args``; attributes those of its ``attrs``;
``threads`` is ignored) and call the CUDA library's ``xl_cuda_<name>_<f32|f64>`` on XLA's stream,
or its ``..._staged`` entry where ``XLINALG_CUDA_LAYOUT`` is ``staged`` (read at each call, as
by the other bindings; ``interleaved`` runs packed here) and a group's arrays fit
(:func:`xlinalg.cuda.rules.stage_capacity` within :data:`~xlinalg.cuda.rules.STAGE_MAX_BYTES`
and the device's shared memory per block).

Nothing is written per entry: :func:`source` generates the C++ from the signatures of
``entries.def`` (:func:`xlinalg.cuda.entries.entries`) and the operators' named core dimensions
(:class:`xlinalg.core.operator.Arg`). Each handler checks every buffer's dtype, its rank and batch
axes (those of the first operand) and its core shape (the named dimensions unified across the
buffers, the two axes of an argument with ``flip`` swapped as its attribute bit says), and that
every square order is at most :data:`~xlinalg.cuda.rules.MAX_ORDER`; a failed check, or a CUDA
error from the entry, is an ``ffi::Error`` naming the entry. The entries' dimensions are
``batch`` (the product of the first operand's batch axes), ``n`` (its last axis), ``k`` (the
second operand's last axis), ``rows``/``cols`` (the second operand's last two axes).

The source compiles with the system C++ compiler against ``jax.ffi.include_dir()`` alone (no
CUDA headers: ``cudaStream_t`` is declared opaque) into the cache of
:mod:`xlinalg.lapack.build`, keyed by the generated source, the jaxlib version and the CUDA
library's build. The CUDA entries' addresses come from the loaded library
(:func:`xlinalg.cuda.library`) through the handlers' ``xl_cuda_ffi_set``. The targets are
registered whenever the CUDA library is built, with or without a GPU: lowering for the CUDA
platform needs no device. Each handler also has a check-only twin (:func:`check_symbol`: no
stream, no launch), which a CPU program can call to test the checks and the attributes.
"""

from __future__ import annotations

import ctypes
import re
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from .entries import DTYPES, Entry, entries

#: The attribute types the CPU handlers take: NumPy scalar type -> C++ type.
ATTRIBUTE_TYPES = {np.int32: "std::int32_t", np.float64: "double"}
#: The CUDA library's helpers the handlers call: name -> (C++ function pointer type, variable).
HELPERS = {
    "xl_cuda_error_name": ("const char* (*)(int)", "xl_error_name"),
    "xl_cuda_set_device": ("int (*)(int)", "xl_set_device"),
    "xl_cuda_shared_limit": ("int (*)(int*)", "xl_shared_limit"),
}
#: The entries' dimension parameters: name -> (operand, axis from the end).
DIMENSIONS = {"n": (0, 1), "k": (1, 1), "rows": (1, 2), "cols": (1, 1)}

_state: dict = {}


# ---- the handlers' specification ---------------------------------------------------------------
@dataclass(frozen=True)
class Buffer:
    """One operand or result of a handler: its parameter name in ``entries.def``, its named core
    dimensions, the parameter that swaps them (``None``: none) and whether it is the int32
    status."""

    name: str
    dims: tuple[str, ...]
    flip: str | None = None
    status: bool = False


@dataclass(frozen=True)
class Handler:
    """One handler: the target name, the CUDA entry it calls and the dtype suffix, its operands,
    results and attributes ((name, C++ type) in the CPU handler's order), and for each flip
    parameter the attribute and bit mask that hold it."""

    target: str
    entry: Entry
    suffix: str
    operands: tuple[Buffer, ...]
    results: tuple[Buffer, ...]
    attrs: tuple[tuple[str, str], ...]
    flips: tuple[tuple[str, str, int], ...]

    @property
    def symbol(self) -> str:
        """The CUDA entry called: ``xl_cuda_<name>_<suffix>``."""
        return self.entry.symbol(self.suffix)

    @property
    def staged_symbol(self) -> str:
        """The entry called in the staged layout: ``xl_cuda_<name>_<suffix>_staged``."""
        return self.entry.symbol(self.suffix, "staged")


def _roles(op, spec) -> dict:
    """The roles of the forward and VJP entries' operands and results, as (dims, flip, status):
    forward operands the inputs, results the outputs then the status (where the CPU handler has
    one); VJP operands those the CPU table picks (a cotangent has its output's dims), results one
    per input."""
    args = [(a.dims, a.flip, False) for a in op.args]
    outs = [(o.dims, o.flip, False) for o in op.outputs]
    picked = spec.vjp_args(
        tuple(("in", i) for i in range(len(args))), tuple(("out", j) for j in range(len(outs))), tuple(("out", j) for j in range(len(outs)))
    )
    vjp_operands = [args[i] if kind == "in" else outs[i] for kind, i in picked]
    forward_results = outs + ([((), None, True)] if spec.status else [])
    return {"forward": (args, forward_results), "vjp": (vjp_operands, args)}


def _flips(op, spec) -> tuple:
    """For each flip parameter of ``op``: (parameter, attribute, mask), read off ``spec.attrs``
    with the parameter off and on."""
    out = []
    for name in sorted({x.flip for x in (*op.args, *op.outputs) if x.flip}):
        off, on = spec.attrs({**op.params, name: False}), spec.attrs({**op.params, name: True})
        changed = [k for k in on if int(on[k]) != int(off[k])]
        if len(changed) != 1 or not isinstance(on[changed[0]], np.int32):
            raise ValueError(f"{op.name}: the parameter {name} is not one bit of an int32 attribute")
        mask = int(on[changed[0]]) ^ int(off[changed[0]])
        if mask & (mask - 1) or not int(on[changed[0]]) & mask:
            raise ValueError(f"{op.name}: the parameter {name} is not one bit of an int32 attribute")
        out.append((name, changed[0], mask))
    return tuple(out)


def _buffers(params, roles, what: str) -> tuple:
    """The :class:`Buffer` of each pointer parameter, paired in order with the CPU handler's
    roles; a status must be ``int32_t*``, anything else ``T*``/``const T*``."""
    if len(params) != len(roles):
        raise ValueError(f"{what}: entries.def has {len(params)} such pointers, the CPU handler {len(roles)}")
    out = []
    for p, (dims, flip, status) in zip(params, roles):
        want = ("int32_t*",) if status else ("T*", "const T*")
        if p.type not in want:
            raise ValueError(f"{what}: {p.name} has the type {p.type}, expected {want[0]}")
        out.append(Buffer(p.name, tuple(dims), flip, status))
    return tuple(out)


@cache
def handlers() -> tuple[Handler, ...]:
    """Every handler: each operator of :data:`~xlinalg.cuda.rules.RULES`, forward and VJP, each
    dtype.

    Raises
    ------
    ValueError
        When an entry of ``entries.def`` does not take the CPU handler's operands (its
        ``const T*`` parameters), results (its ``T*``/``int32_t*`` ones) and attributes in order,
        or has a scalar parameter that is neither an attribute nor a dimension of
        :data:`DIMENSIONS`.
    """
    from ..core import operators
    from ..lapack import jax_ffi as cpu
    from .rules import RULES

    table = entries()
    out = []
    for name in RULES:
        op, spec = operators()[name], cpu.TABLE[name]
        if op.shape is not None:
            raise ValueError(f"{name}: an operator with its own shape function has no named core dimensions")
        roles, flips = _roles(op, spec), _flips(op, spec)
        attrs = spec.attrs(dict(op.params))
        for kind in ("forward", "vjp"):
            entry = table[name if kind == "forward" else f"{name}_vjp"]
            what = f"entries.def: {entry.name}"
            consts = [p for p in entry.params if p.type == "const T*"]
            writes = [p for p in entry.params if p.pointer and p.type != "const T*"]
            operands = _buffers(consts, roles[kind][0], f"{what} (operands)")
            results = _buffers(writes, roles[kind][1], f"{what} (results)")
            for p in entry.params:
                if p.pointer or p.name == "batch":
                    continue
                if p.name in DIMENSIONS:
                    position, axis = DIMENSIONS[p.name]
                    if position >= len(operands) or len(operands[position].dims) < axis:
                        raise ValueError(f"{what}: {p.name} is axis -{axis} of operand {position}, which has no such axis")
                elif p.name not in attrs:
                    raise ValueError(f"{what}: the scalar {p.name} is neither a dimension nor an attribute of the CPU handler")
            try:
                types = tuple((k, ATTRIBUTE_TYPES[type(v)]) for k, v in attrs.items())
            except KeyError as exc:
                raise ValueError(f"{name}: an attribute of type {exc} has no C++ type here") from None
            for suffix in DTYPES:
                target = spec.target(kind, DTYPES[suffix])
                out.append(Handler(target, entry, suffix, operands, results, types, flips))
    return tuple(out)


def targets() -> list[str]:
    """Every custom-call target the handlers define (the CPU targets of the same operators)."""
    return [h.target for h in handlers()]


def supports(op, shapes) -> bool:
    """Whether the CUDA handlers run ``op`` on arrays of ``shapes`` (every operand of the call):
    the registered operator is in :data:`~xlinalg.cuda.rules.RULES`, the handlers are registered,
    the CUDA library runs on this machine's GPUs (:func:`gpus_reason`) and the shapes
    :func:`~xlinalg.cuda.rules.fits`.

    Raises
    ------
    ImportError
        With ``XLINALG_KERNELS=compiled`` when the CUDA library is built but its handlers are not
        available or it does not run on this machine's GPUs.
    """
    from .rules import RULES, fits

    if op.name not in RULES or not fits(op, shapes):
        return False
    from ..lapack import jax_ffi as cpu

    if cpu.entry(op) is None:
        return False
    why = handlers_reason()
    if why != "loaded":
        from .. import lapack

        if lapack.mode() == "compiled" and _state.get("built"):
            raise ImportError(f"XLINALG_KERNELS=compiled, but the JAX CUDA handlers are not available: {why}")
        return False
    return True


def handlers_reason() -> str:
    """``"loaded"`` where JAX's CUDA handlers are built (:func:`reason`, which builds them on first
    use) and run on this machine's GPUs (:func:`gpus_reason`), else why not."""
    return reason() if library() is None else gpus_reason()


def gpus_reason() -> str:
    """``"loaded"`` where the CUDA library runs on the GPUs JAX uses, else why not. Without a
    driver, or without a GPU backend in JAX, nothing runs here and programs are only lowered (for
    the CUDA platform, as in tests): ``"loaded"``. Else the library must find a usable device (a
    driver older than the runtime linked in leaves none) and have the code of each of JAX's GPUs
    (:meth:`~xlinalg.cuda.rules.CudaEntries.runs_on`, on contexts JAX has made already).
    Decided once."""
    if "gpus" not in _state:
        _state["gpus"] = _gpus_reason()
    return _state["gpus"]


def _gpus_reason() -> str:
    from . import device_status, driver_version
    from .rules import library_entries

    devices = _jax_gpus() if driver_version() else []
    if not devices:
        return "loaded"
    ents = library_entries()
    if ents is None:
        return f"the CUDA library finds no usable device ({device_status()})"
    try:
        if not all(ents.runs_on(index) for index in devices):
            return f"the CUDA library has no code for device(s) {ents.missing_code()}"
    except RuntimeError as exc:
        return f"the CUDA library's code cannot be checked on JAX's GPUs ({exc})"
    return "loaded"


def _jax_gpus() -> list[int]:
    """The CUDA ordinals of the GPUs JAX uses (none without its GPU backend)."""
    import jax

    try:
        devices = jax.local_devices(backend="gpu")
    except RuntimeError:
        return []
    return sorted(d.local_hardware_id for d in devices if d.local_hardware_id is not None)


# ---- the C++ source -------------------------------------------------------------------------------
_PRELUDE = """\
// XLA FFI handlers for the CUDA platform over the CUDA library's entries (generated; see
// xlinalg.cuda.jax_ffi). Compiled without CUDA headers: the stream is an opaque pointer.
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
typedef struct CUstream_st* cudaStream_t;

#define XL_CUDA_FFI_API __attribute__((visibility("default")))

namespace {

constexpr std::int64_t kMaxOrder = @MAX_ORDER@;
constexpr std::int64_t kStageGroup = @STAGE_GROUP@, kStageMaxBytes = @STAGE_MAX_BYTES@;

const char* (*xl_error_name)(int) = nullptr;
int (*xl_set_device)(int) = nullptr;
int (*xl_shared_limit)(int*) = nullptr;

// The stage of a call of ``batch`` entries whose buffers hold ``stage`` elements per entry in all,
// when the staged layout is chosen (XLINALG_CUDA_LAYOUT, read at each call; unset:
// "@DEFAULT_LAYOUT@") and a group's area fits in kStageMaxBytes and in the device's shared memory
// per block; else 0: a packed call (interleaved too: its transposes are the array library's).
int staged(std::int64_t batch, std::int64_t stage, int itemsize) {
  const char* layout = std::getenv("XLINALG_CUDA_LAYOUT");
  if (std::strcmp(layout != nullptr ? layout : "@DEFAULT_LAYOUT@", "staged") != 0 || batch <= 1) return 0;
  const std::int64_t capacity = stage * (kStageGroup | 1) * itemsize;
  int limit = 0;
  if (capacity > kStageMaxBytes || xl_shared_limit == nullptr || xl_shared_limit(&limit) != 0 || capacity > limit) return 0;
  return int(stage);
}

ffi::Error fail(const char* entry, const std::string& what) {
  return ffi::Error::InvalidArgument(std::string("xlinalg ") + entry + " (CUDA): " + what);
}

// The batch axes of the first operand: all but its ``core`` last.
struct Batch {
  const std::int64_t* dims = nullptr;
  std::size_t rank = 0;
  std::int64_t size = 1;
};

ffi::Error batch_of(const char* entry, const char* name, const ffi::AnyBuffer& b, std::size_t core, Batch& batch) {
  const auto d = b.dimensions();
  if (d.size() < core) return fail(entry, std::string(name) + " has too few dimensions");
  batch.dims = d.begin();
  batch.rank = d.size() - core;
  for (std::size_t i = 0; i < batch.rank; ++i) batch.size *= d[i];
  return ffi::Error::Success();
}

// Checks a buffer's dtype, its rank (the batch's and ``core``) and its batch axes; its core sizes
// go to ``sizes``.
ffi::Error check(const char* entry, const char* name, const ffi::AnyBuffer& b, ffi::DataType dtype, const Batch& batch,
                 std::size_t core, std::int64_t* sizes) {
  if (b.element_type() != dtype) return fail(entry, std::string(name) + " has the wrong dtype");
  const auto d = b.dimensions();
  if (d.size() != batch.rank + core)
    return fail(entry, std::string(name) + " has rank " + std::to_string(d.size()) + ", expected " +
                           std::to_string(batch.rank + core));
  for (std::size_t i = 0; i < batch.rank; ++i)
    if (d[i] != batch.dims[i]) return fail(entry, std::string(name) + " has other batch axes than the first operand");
  for (std::size_t i = 0; i < core; ++i) sizes[i] = d[batch.rank + i];
  return ffi::Error::Success();
}

// Binds the named dimension ``dim`` to ``size``, or checks it against its earlier binding.
ffi::Error unify(const char* entry, const char* name, const char* dim, std::int64_t size, std::int64_t& bound) {
  if (bound < 0) {
    bound = size;
    return ffi::Error::Success();
  }
  if (size == bound) return ffi::Error::Success();
  return fail(entry, std::string(name) + ": its dimension " + dim + " is " + std::to_string(size) + ", elsewhere " +
                         std::to_string(bound));
}

ffi::Error order(const char* entry, const char* dim, std::int64_t size) {
  if (size <= kMaxOrder) return ffi::Error::Success();
  return fail(entry, std::string("the square order ") + dim + " = " + std::to_string(size) +
                         " is above the largest the CUDA entries take (" + std::to_string(kMaxOrder) + ")");
}

ffi::Error as_int(const char* entry, const char* what, std::int64_t size) {
  if (size <= INT_MAX) return ffi::Error::Success();
  return fail(entry, std::string(what) + " is too large");
}

ffi::Error launched(const char* entry, const char* symbol, int status) {
  if (status == 0) return ffi::Error::Success();
  const char* name = xl_error_name != nullptr ? xl_error_name(status) : nullptr;
  return ffi::Error::Internal(std::string("xlinalg ") + entry + " (CUDA): " + symbol + " failed: " +
                              (name != nullptr ? name : "cudaError " + std::to_string(status)));
}

ffi::Error device(const char* entry, std::int32_t ordinal) {
  if (xl_set_device == nullptr) return fail(entry, "the CUDA library's entries are not set");
  return launched(entry, "cudaSetDevice", xl_set_device(ordinal));
}

#define XL_CHECK(expr)           \\
  do {                           \\
    ffi::Error e_ = (expr);      \\
    if (e_.failure()) return e_; \\
  } while (0)

"""


def _c_type(t: str, suffix: str) -> str:
    scalar = {"f32": "float", "f64": "double"}[suffix]
    return re.sub(r"\bT\b", scalar, t).replace("int64_t", "std::int64_t").replace("int32_t", "std::int32_t")


def _handler(h: Handler) -> str:
    """The C++ of one handler: its entry's pointer, the checking function and the symbol."""
    (_, ptr, fn), (_, staged_ptr, staged_fn) = _pointers(h)
    dtype = {"f32": "F32", "f64": "F64"}[h.suffix]
    params = [f"{_c_type(p.type, h.suffix)}" for p in h.entry.params] + ["void*"]
    signature = ["cudaStream_t stream", "std::int32_t ordinal"]
    signature += [f"ffi::AnyBuffer {b.name}" for b in h.operands]
    signature += [f"ffi::Result<ffi::AnyBuffer> {b.name}" for b in h.results]
    signature += [f"{t} {name}" for name, t in h.attrs]
    e = h.entry.name
    lines = [f"using {fn} = int (*)({', '.join(params)});", f"{fn} {ptr} = nullptr;"]
    lines += [f"using {staged_fn} = int (*)({', '.join([*params[:-1], 'int', 'void*'])});", f"{staged_fn} {staged_ptr} = nullptr;", ""]
    lines.append(f"ffi::Error impl_{h.target}({', '.join(signature)}) {{")
    lines.append(f'  const char* e = "{e}";')
    lines.append(f'  if ({ptr} == nullptr) return fail(e, "the CUDA library\'s entries are not set");')
    for name, _ in h.attrs:
        if name not in {p.name for p in h.entry.params}:
            lines.append(f"  (void){name};")
    for param, attr, mask in h.flips:
        lines.append(f"  const bool flip_{param} = ({attr} & {mask}) != 0;")
    first = h.operands[0]
    lines.append("  Batch batch;")
    lines.append(f'  XL_CHECK(batch_of(e, "{first.name}", {first.name}, {len(first.dims)}, batch));')
    names = sorted({d for b in (*h.operands, *h.results) for d in b.dims})
    if names:
        lines.append("  " + " ".join(f"std::int64_t dim_{d} = -1;" for d in names))
    lines.append("  std::int64_t s[2] = {0, 0};")
    square = set()
    for b, ref in [(b, b.name) for b in h.operands] + [(b, f"*{b.name}") for b in h.results]:
        kind = "S32" if b.status else dtype
        lines.append(f'  XL_CHECK(check(e, "{b.name}", {ref}, ffi::DataType::{kind}, batch, {len(b.dims)}, s));')
        for axis, d in enumerate(b.dims):
            size = f"s[{axis}]"
            if b.flip and len(b.dims) == 2:
                size = f"(flip_{b.flip} ? s[{1 - axis}] : s[{axis}])"
            lines.append(f'  XL_CHECK(unify(e, "{b.name}", "{d}", {size}, dim_{d}));')
        if len(b.dims) == 2 and b.dims[0] == b.dims[1]:
            square.add(b.dims[0])
    for d in sorted(square):
        lines.append(f'  XL_CHECK(order(e, "{d}", dim_{d}));')
    args = []
    for p in h.entry.params:
        if p.name == "batch":
            args.append("batch.size")
        elif p.name in DIMENSIONS:
            position, axis = DIMENSIONS[p.name]
            b = h.operands[position]
            lines.append(f"  const std::int64_t {p.name}_ = {b.name}.dimensions()[batch.rank + {len(b.dims) - axis}];")
            lines.append(f'  XL_CHECK(as_int(e, "{p.name}", {p.name}_));')
            args.append(f"{_c_type(p.type, h.suffix)}({p.name}_)")
        elif p.pointer:
            ref = f"{p.name}." if p.name in {b.name for b in h.operands} else f"{p.name}->"
            args.append(f"static_cast<{_c_type(p.type, h.suffix)}>({ref}untyped_data())")
        else:
            args.append(f"{_c_type(p.type, h.suffix)}({p.name})")
    lines.append("  if (ordinal < 0) return ffi::Error::Success();  // the checks only")
    lines.append("  XL_CHECK(device(e, ordinal));")
    per_entry = [f"{b.name}.element_count()" for b in h.operands] + [f"{b.name}->element_count()" for b in h.results]
    lines.append(f"  const std::int64_t elements = std::int64_t({' + '.join(per_entry)});  // of all the buffers")
    itemsize = {"f32": 4, "f64": 8}[h.suffix]
    lines.append(f"  const int stage = batch.size > 0 ? staged(batch.size, elements / batch.size, {itemsize}) : 0;")
    lines.append(f"  if (stage > 0 && {staged_ptr} != nullptr)")
    lines.append(f'    return launched(e, "{h.staged_symbol}", {staged_ptr}({", ".join(args)}, stage, static_cast<void*>(stream)));')
    lines.append(f'  return launched(e, "{h.symbol}", {ptr}({", ".join(args)}, static_cast<void*>(stream)));')
    lines.append("}")
    lines.append("")
    # the same checks without a GPU: no stream, no launch
    names = [f"{b.name}" for b in (*h.operands, *h.results)] + [name for name, _ in h.attrs]
    lines.append(f"ffi::Error check_{h.target}({', '.join(signature[2:])}) {{")
    lines.append(f"  return impl_{h.target}(nullptr, -1, {', '.join(names)});")
    lines.append("}")
    lines.append("")
    return "\n".join(lines)


def _binding(h: Handler, cuda: bool = True) -> str:
    parts = ["ffi::Ffi::Bind()"]
    if cuda:
        parts += [".Ctx<ffi::PlatformStream<cudaStream_t>>()", ".Ctx<ffi::DeviceOrdinal>()"]
    parts += [".Arg<ffi::AnyBuffer>()"] * len(h.operands) + [".Ret<ffi::AnyBuffer>()"] * len(h.results)
    parts += [f'.Attr<{t}>("{name}")' for name, t in h.attrs]
    return "".join(parts)


@cache
def source() -> str:
    """The C++ source of every handler (:func:`handlers`) and of ``xl_cuda_ffi_set(name,
    address)``, which takes the address of a CUDA entry or helper by its exported name (0: taken,
    -1: unknown name)."""
    from .rules import DEFAULT_LAYOUT, MAX_ORDER, STAGE_GROUP, STAGE_MAX_BYTES

    hs = handlers()
    prelude = _PRELUDE
    for name, value in {"MAX_ORDER": MAX_ORDER, "STAGE_GROUP": STAGE_GROUP, "STAGE_MAX_BYTES": STAGE_MAX_BYTES, "DEFAULT_LAYOUT": DEFAULT_LAYOUT}.items():
        prelude = prelude.replace(f"@{name}@", str(value))
    out = [prelude, "// ---- the handlers' checks and calls ----"]
    seen = set()
    for h in hs:
        if (h.entry.name, h.suffix) in seen:
            raise ValueError(f"two handlers call {h.symbol}")
        seen.add((h.entry.name, h.suffix))
        out.append(_handler(h))
    out.append("}  // namespace\n")
    out.append("// ---- the exported handlers ----")
    for h in hs:
        out.append(f'extern "C" XL_CUDA_FFI_API XLA_FFI_Error* {h.target}(XLA_FFI_CallFrame* frame);')
        out.append(f"XLA_FFI_DEFINE_HANDLER_SYMBOL({h.target}, impl_{h.target}, {_binding(h)});\n")
    for h in hs:
        out.append(f'extern "C" XL_CUDA_FFI_API XLA_FFI_Error* {check_symbol(h.target)}(XLA_FFI_CallFrame* frame);')
        out.append(f"XLA_FFI_DEFINE_HANDLER_SYMBOL({check_symbol(h.target)}, check_{h.target}, {_binding(h, cuda=False)});\n")
    out.append('extern "C" XL_CUDA_FFI_API int xl_cuda_ffi_set(const char* name, void* address) {')
    for name, (t, variable) in HELPERS.items():
        out.append(f'  if (std::strcmp(name, "{name}") == 0) return {variable} = reinterpret_cast<{t}>(address), 0;')
    for h in hs:
        for symbol, ptr, fn in _pointers(h):
            out.append(f'  if (std::strcmp(name, "{symbol}") == 0) return {ptr} = reinterpret_cast<{fn}>(address), 0;')
    out.append("  return -1;\n}\n")
    out.append("// the stage of a call with these sizes, 0 for a packed call (for tests)")
    out.append('extern "C" XL_CUDA_FFI_API int xl_cuda_ffi_stage(std::int64_t batch, std::int64_t stage, int itemsize) {')
    out.append("  return staged(batch, stage, itemsize);\n}\n")
    return "\n".join(out)


def _pointers(h: Handler) -> list[tuple[str, str, str]]:
    """(symbol, variable, function pointer type) of the entries handler ``h`` calls: packed, staged."""
    base = f"{h.entry.name}_{h.suffix}"
    return [(h.symbol, f"xl_p_{base}", f"xl_fn_{base}"), (h.staged_symbol, f"xl_ps_{base}", f"xl_fns_{base}")]


def check_symbol(target: str) -> str:
    """The handler of ``target`` without the CUDA context: it binds the same operands, results
    and attributes and runs the same checks, then returns without a launch (its results are left
    unwritten). Not registered: a CPU target for testing the checks and the attributes where
    there is no GPU."""
    return target.replace("xl_ffi_", "xl_ffi_check_", 1)


def symbols() -> list[str]:
    """The CUDA library's functions the handlers call (set through ``xl_cuda_ffi_set``)."""
    return [*HELPERS, *dict.fromkeys(symbol for h in handlers() for symbol, _, _ in _pointers(h))]


# ---- the library ----------------------------------------------------------------------------------
def library():
    """The handlers' library (a ``ctypes.CDLL``) with the CUDA entries set and every target
    registered for the CUDA platform, built on first use; ``None`` where the compiled layer is off,
    the CUDA library is not built or the handlers cannot be built (:func:`reason`). Never raises."""
    if "library" not in _state:
        try:
            _state["library"], _state["reason"] = _load()
        except Exception as exc:  # whatever goes wrong, the composed rules run on the GPU
            _state["library"], _state["reason"] = None, f"{type(exc).__name__}: {exc}"
    return _state["library"]


def reason() -> str:
    """Why :func:`library` is ``None`` (``"loaded"`` when it is not)."""
    library()
    return _state["reason"]


def _load():
    from .. import lapack
    from . import library as cuda_library
    from . import unavailable_reason

    if lapack.mode() == "python":
        return None, "XLINALG_KERNELS=python"
    cuda = cuda_library()
    if cuda is None:
        return None, f"the CUDA library is not available ({unavailable_reason()})"
    _state["built"] = True
    import jax
    import jaxlib

    from ..lapack import build

    include = Path(jax.ffi.include_dir())
    if not (include / "xla" / "ffi" / "api" / "ffi.h").is_file():
        return None, f"the XLA FFI headers are missing from {include}"
    text = source()
    with tempfile.TemporaryDirectory(prefix="xlinalg-cuda-ffi-") as work:
        path = Path(work) / "cuda_ffi.cpp"
        path.write_text(text)
        # (the key holds the source too: cached_library hashes every source file)
        key = (jaxlib.__version__, cuda.xl_cuda_build_id().decode())
        # -O1: the handlers are checks around one kernel launch; -O3 only lengthens the build
        flags = tuple("-O1" if f == "-O3" else f for f in build.COMPILE_FLAGS)
        target, why = build.cached_library("xlinalg_cuda_ffi", "JAX CUDA handlers", [path], [include], key, flags)
    if target is None:
        return None, why
    lib = ctypes.CDLL(str(target))
    setter = lib.xl_cuda_ffi_set
    setter.argtypes, setter.restype = [ctypes.c_char_p, ctypes.c_void_p], ctypes.c_int
    for name in symbols():
        address = ctypes.cast(getattr(cuda, name), ctypes.c_void_p).value
        if not address or setter(name.encode(), address) != 0:
            return None, f"cannot set {name} in {target}"
    for name in targets():
        jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, name)), platform="CUDA")
    return lib, "loaded"
