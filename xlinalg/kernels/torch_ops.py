"""The compiled kernel layer as torch custom operators, for ``torch.compile`` and ``torch.export``.

For every rule of :data:`xlinalg.lapack.rules.RULES` (operator ``name``, kind ``forward`` or
``vjp``) this module defines, generically from the operator's spec, the custom operator
``torch.ops.xlinalg.<name>_<kind>`` (``torch.library.custom_op``, no mutation, no autograd of
its own):

``xlinalg::<name>_forward(Tensor <arg>, ..., *, <params>) -> (outputs..., Tensor status)``
    the operator's outputs and, for operators with a failure policy, an ``int32`` status of
    the batch shape (non-zero where the entry failed; its outputs are then entirely NaN);
``xlinalg::<name>_vjp(Tensor <arg>, ..., Tensor out<i>, ..., Tensor cot<i>, ..., *, <params>)
-> (grads...)``
    the input cotangents, projected onto each argument's structure, batch axes not summed.

The parameters are typed by their defaults (``bool``, ``int``, ``float``). Inputs are the
broadcast tensors of a prepared call (:func:`xlinalg.core.apply.prepare`). The real kernel runs
the NumPy rule on the tensors' memory (``.numpy()``, no copy), the CUDA kernel the GPU layer's
rule (:mod:`xlinalg.cuda.rules`; the pure rules on torch's CUDA kernels where it has none or
the orders do not fit its entries), the fake kernel takes the output
shapes from the operator's shape rule (:func:`xlinalg.core.apply.check_signature`): a compiler
sees each call as one node. Where the layer is off when the graph runs (``XLINALG_KERNELS=python``
set later) the kernel runs the pure rules on NumPy instead.

:func:`runner` is what :meth:`xlinalg.kernels.torch.TorchKernels.compiled` returns while a graph
is traced. The autograd of the xlinalg operators stays in :mod:`xlinalg.adapters.torch` (the
custom operators run inside its ``autograd.Function``, whose double backward differentiates the
pure rules).
"""

from __future__ import annotations

import array_api_compat.numpy as _np_xp
import numpy as np
import torch

from .. import lapack
from ..core import apply
from ..core.operator import operators
from ..core.shapes import output_shapes
from ..lapack.rules import RULES
from ..lapack.rules import rule as _compiled_rule
from . import kernels_for

#: The namespace of the custom operators.
NAMESPACE = "xlinalg"
_SCHEMA_TYPES = {bool: "bool", int: "int", float: "float"}

#: (operator name, kind) -> the ``OpOverload`` of its custom operator.
OPS: dict[tuple[str, str], torch._ops.OpOverload] = {}
#: (operator name, kind) -> (the registered spec, the ``run(*groups, params)`` of :func:`runner`).
_RUNNERS: dict = {}


def op_name(name: str, kind: str) -> str:
    """The qualified name of the custom operator of ``name``'s ``kind`` rule."""
    return f"{NAMESPACE}::{name}_{kind}"


def schema(op, kind: str) -> str:
    """The schema of ``op``'s ``kind`` custom operator (without its name)."""
    tensors = [a.name for a in op.args]
    nout = len(op.outputs)
    if kind == "vjp":
        tensors += [f"out{i}" for i in range(nout)] + [f"cot{i}" for i in range(nout)]
        returns = len(op.args)
    else:
        returns = nout + (op.failure is not None)
    args = [f"Tensor {t}" for t in tensors]
    if op.params:
        args.append("*")
        args += [f"{_SCHEMA_TYPES[type(v)]} {k}" for k, v in op.params.items()]
    result = "Tensor" if returns == 1 else "(" + ", ".join(["Tensor"] * returns) + ")"
    return f"({', '.join(args)}) -> {result}"


def _output_shapes(op, shapes, params):
    """``(batch, output shapes)`` of broadcast inputs of ``shapes`` (symbolic sizes allowed:
    the batch is the first argument's, the core shapes come from the operator's shape rule)."""
    batch = tuple(shapes[0][: len(shapes[0]) - op.args[0].ndim])
    core = [tuple(s[len(s) - a.ndim:]) for s, a in zip(shapes, op.args)]
    return batch, tuple(batch + tuple(c) for c in output_shapes(op, core, params))


def _tensor(v, arrays):
    """A NumPy result as a tensor that owns its memory (a custom operator may not return an
    alias of an input) and is C-contiguous like the fake kernel's outputs."""
    v = np.asarray(v)
    if not v.flags.c_contiguous or not v.flags.writeable or any(np.may_share_memory(v, a) for a in arrays):
        v = np.array(v, order="C", copy=True)
    return torch.from_numpy(v)


def _own(v, tensors):
    """A result as a C-contiguous tensor that aliases no input (a custom operator's output may
    not)."""
    v = v.contiguous()
    return v.clone() if any(v.untyped_storage().data_ptr() == t.untyped_storage().data_ptr() for t in tensors) else v


def _pure(op, kind, arrays, params, xp=_np_xp):
    """The pure Array-API rules on arrays of ``xp`` (NumPy where the CPU layer is off, torch's
    on devices the GPU layer does not take): ``(outputs, status)`` or grads."""
    nargs, nout = len(op.args), len(op.outputs)
    inputs = arrays[:nargs]
    shapes = tuple(tuple(x.shape) for x in inputs)
    dtypes = [str(x.dtype).rsplit(".", 1)[-1] for x in inputs]
    batch = apply.check_signature(op, shapes, dtypes, params)[0]
    call = apply.Call(op, xp, kernels_for(xp), inputs, shapes, batch, params)
    read = apply.read(call)
    if kind == "vjp":
        outputs, cotangents = arrays[nargs:nargs + nout], arrays[nargs + nout:]
        return apply.project(call, op.vjp(call.xp, call.kern, read, outputs, cotangents, **params))
    outputs = apply.fill_failed(call, read, tuple(op.forward(call.xp, call.kern, *read, **params)))
    status = None
    if op.failure is not None:
        status = xp.zeros(batch, dtype=xp.int32, **({} if xp is _np_xp else {"device": inputs[0].device}))
        for y, spec in zip(outputs, op.outputs):
            bad = ~xp.all(xp.isfinite(y), axis=tuple(range(-spec.ndim, 0))) if spec.ndim else ~xp.isfinite(y)
            status = status | xp.astype(bad, xp.int32)
    return outputs, status


def _define(op, kind: str):
    nargs, nout = len(op.args), len(op.outputs)
    failure = op.failure is not None

    def kernel(*tensors, **params):
        arrays = tuple(t.detach().numpy() for t in tensors)
        fn = _compiled_rule(op, kind)
        result = None
        if fn is not None:
            threads = torch.get_num_threads()
            lapack.use_blas_threads(threads)
            if kind == "forward":
                result = fn(arrays, params, threads)
            else:
                result = fn(arrays[:nargs], arrays[nargs:nargs + nout], arrays[nargs + nout:], params, threads)
        if result is None:  # the layer is off, or the rule does not take this call
            result = _pure(op, kind, arrays, params)
        if kind == "forward":
            outputs, status = result
            values = list(outputs)
            if failure:
                values.append(np.zeros(_output_shapes(op, [x.shape for x in arrays[:nargs]], params)[0], np.int32)
                              if status is None else status)
        else:
            values = list(result)
        out = tuple(_tensor(v, arrays) for v in values)
        return out[0] if len(out) == 1 else out

    def cuda_kernel(*tensors, **params):
        from ..cuda import rules as cuda_rules
        from .torch import TorchArrays

        run = cuda_rules.cuda_runner(op, kind, tensors, TorchArrays())
        if run is not None:
            groups = (tensors,) if kind == "forward" else (tensors[:nargs], tensors[nargs:nargs + nout], tensors[nargs + nout:])
            values, status = run(*groups, params=params)
        else:  # no GPU rule for this call (or no usable device): the pure rules on torch's kernels
            import array_api_compat.torch as torch_xp

            result = _pure(op, kind, tensors, params, torch_xp)
            values, status = result if kind == "forward" else (result, None)
        values = list(values)
        if kind == "forward" and failure:
            values.append(torch.zeros(_output_shapes(op, [tuple(x.shape) for x in tensors[:nargs]], params)[0],
                                      dtype=torch.int32, device=tensors[0].device) if status is None else status)
        out = tuple(_own(v, tensors) for v in values)
        return out[0] if len(out) == 1 else out

    def fake(*tensors, **params):
        inputs = tensors[:nargs]
        if kind == "vjp":
            out = tuple(torch.empty_like(x, memory_format=torch.contiguous_format) for x in inputs)
        else:
            batch, shapes = _output_shapes(op, [tuple(x.shape) for x in inputs], params)
            out = tuple(inputs[0].new_empty(s) for s in shapes)
            if failure:
                out += (inputs[0].new_empty(batch, dtype=torch.int32),)
        return out[0] if len(out) == 1 else out

    kernel.__name__ = fake.__name__ = f"{op.name}_{kind}"
    custom = torch.library.custom_op(op_name(op.name, kind), kernel, mutates_args=(), schema=schema(op, kind))
    custom.register_fake(fake)
    custom.register_kernel("cuda", cuda_kernel)
    return getattr(getattr(torch.ops, NAMESPACE), f"{op.name}_{kind}").default


def _make_runner(op, kind: str):
    overload, nargs, nout = OPS[(op.name, kind)], len(op.args), len(op.outputs)
    single = (nargs if kind == "vjp" else nout + (op.failure is not None)) == 1

    def run(*groups, params):
        tensors = [x for group in groups for x in group]
        result = overload(*tensors, **params)
        result = (result,) if single else tuple(result)
        # The status is dropped: no data to raise on while tracing, failing entries are NaN.
        return (result[:nout] if kind == "forward" else result), None

    return run


def runner(op, kind: str):
    """The ``run(*groups, params) -> (values, None)`` of :meth:`Kernels.compiled` calling the
    custom operator of ``op``'s ``kind`` rule, or ``None`` when there is none (no rule, the
    layer is off, or ``op`` is not the registered spec). Traceable by Dynamo: whether the layer
    is active is read once per trace, as a constant."""
    entry = _RUNNERS.get((op.name, kind))
    if entry is None or entry[0] is not op or not _active(op.name, kind):
        return None
    return entry[1]


@torch.compiler.assume_constant_result
def _active(name: str, kind: str) -> bool:
    """Whether the compiled layer runs the registered ``name``'s ``kind`` rule (loading the
    layer on first use: not traced)."""
    return _compiled_rule(operators()[name], kind) is not None


def _register() -> None:
    registry = operators()
    for name, kinds in RULES.items():
        op = registry.get(name)
        if op is None:
            continue
        for kind in kinds:
            OPS[(name, kind)] = _define(op, kind)
            _RUNNERS[(name, kind)] = (op, _make_runner(op, kind))


_register()
