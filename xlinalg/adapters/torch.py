"""PyTorch adapter: every operator as a ``torch.autograd.Function`` made from its spec.

:func:`bind` generates one ``torch.autograd.Function`` subclass per operator. Its ``forward``
runs the core forward rule (:func:`xlinalg.core.apply.forward`), ``backward`` the core VJP and
``jvp`` the core JVP, all on the torch kernel table (:mod:`xlinalg.kernels.torch`), whose
primitives are torch's own differentiable functions. Hence

- reverse mode (``backward``, ``torch.autograd.grad``) and double backward: the backward pass
  is built from differentiable torch operations on the saved inputs and outputs;
- forward mode (``torch.autograd.forward_ad``, ``torch.func.jvp``) through ``jvp``;
- ``torch.func.vmap`` through ``generate_vmap_rule``, and with it ``grad``, ``jacrev``,
  ``jacfwd`` and ``hessian``;
- ``torch.compile``: the failure check is skipped while compiling (failing batch entries
  come out NaN, as under ``vmap``).

Validation and broadcasting happen before ``Function.apply`` (:func:`xlinalg.core.apply.prepare`,
with torch's differentiable ``broadcast_to``), so autograd sums the gradients of broadcast
inputs back and the rules see equal batch shapes.
"""

from __future__ import annotations

import array_api_compat.torch as _xp
import torch

from ..core import apply
from ..core.apply import Call
from ..core.operator import Operator
from ..kernels import kernels_for

#: The Array API namespace of torch tensors.
xp = _xp
_KERN = kernels_for(_xp)


def is_array(x) -> bool:
    """Whether ``x`` is a ``torch.Tensor``."""
    return isinstance(x, torch.Tensor)


def _call(op: Operator, inputs, static) -> Call:
    """The :class:`~xlinalg.core.apply.Call` of already prepared ``inputs``."""
    params, shapes, batch = static
    return Call(op, _xp, _KERN, tuple(inputs), shapes, batch, dict(params))


def function_class(op: Operator) -> type:
    """The ``torch.autograd.Function`` subclass of ``op``.

    ``apply(*inputs, static)``: ``inputs`` are the broadcast tensors of a prepared call,
    ``static`` is ``(params as (name, value) pairs, original shapes, batch shape)``.
    """
    nargs = len(op.args)
    multiple = op.multiple_outputs

    def forward(*args):
        inputs, static = args[:nargs], args[nargs]
        outputs = apply.forward(_call(op, inputs, static))
        return tuple(outputs) if multiple else outputs[0]

    def setup_context(ctx, inputs, output):
        outputs = tuple(output) if multiple else (output,)
        tensors = tuple(inputs[:nargs]) + outputs
        ctx.save_for_backward(*tensors)
        ctx.save_for_forward(*tensors)
        ctx.static = inputs[nargs]

    def backward(ctx, *cotangents):
        saved = ctx.saved_tensors
        inputs, outputs = saved[:nargs], saved[nargs:]
        grads = apply.vjp(_call(op, inputs, ctx.static), outputs, cotangents, unbroadcast=False)
        return (*grads, None)

    def jvp(ctx, *tangents):
        saved = ctx.saved_tensors
        inputs, outputs = saved[:nargs], saved[nargs:]
        out = apply.jvp(_call(op, inputs, ctx.static), outputs, tangents[:nargs])
        return tuple(out) if multiple else out[0]

    namespace = {
        "forward": staticmethod(forward),
        "setup_context": staticmethod(setup_context),
        "backward": staticmethod(backward),
        "jvp": staticmethod(jvp),
        "generate_vmap_rule": True,
        "__doc__": f"xlinalg operator {op.name} as a torch.autograd.Function.",
        "__module__": __name__,
    }
    return type(f"{op.name.capitalize()}Function", (torch.autograd.Function,), namespace)


def prepare(op: Operator, arrays, params) -> Call:
    """:func:`xlinalg.core.apply.prepare` for tensors (mixed libraries raise ``TypeError``)."""
    if all(isinstance(x, torch.Tensor) for x in arrays):
        return apply.prepare(op, arrays, params, xp=_xp)
    return apply.prepare(op, arrays, params)


def bind(op: Operator):
    """``op`` as a differentiable function of tensors: ``f(*arrays, **params)`` returning a
    tensor, or a tuple for operators with several outputs."""
    cls = function_class(op)
    names = op.arg_names

    def fn(*arrays, **params):
        call = prepare(op, arrays, params)
        if call.xp is not _xp:
            raise TypeError(f"{op.name}: expected torch tensors for {', '.join(names)}")
        static = (tuple(call.params.items()), call.shapes, call.batch)
        return cls.apply(*call.inputs, static)

    from ..api import docstring, public_function

    fn.__signature__ = public_function(op).__signature__
    fn.__doc__ = docstring(op)
    fn.__name__ = fn.__qualname__ = op.name
    fn.__module__ = "xlinalg.torch"
    fn.operator = op
    fn.function = cls
    return fn
