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

Eager calls on CPU tensors outside the ``torch.func`` transforms and forward-mode dual levels
go through the compiled layer's C++ autograd node instead (:mod:`xlinalg.lapack.torch_node`:
the forward and VJP kernels with no Python in the backward pass; a recorded backward pass runs
the core VJP through :func:`_recorded_vjp`), where it is built. A call that nothing can
differentiate and that the node does not take runs the forward rule without a ``Function``
node: its outputs are those of the rule.

Validation and broadcasting happen before ``Function.apply`` (:func:`xlinalg.core.apply.prepare`,
with torch's differentiable ``broadcast_to``), so autograd sums the gradients of broadcast
inputs back and the rules see equal batch shapes.
"""

from __future__ import annotations

import inspect
import itertools

import array_api_compat.torch as _xp
import torch

from .. import lapack
from ..core import apply
from ..core.apply import Call
from ..core.docs import bind_metadata
from ..core.operator import Operator
from ..kernels import kernels_for
from ..kernels.torch import eager_single_blas
from ..lapack import torch_node

#: The Array API namespace of torch tensors.
xp = _xp
_KERN = kernels_for(_xp)
#: name -> Operator; the generated functions look their spec up here (a global, which
#: ``torch.compile`` can trace, rather than a closure cell holding an arbitrary object).
_SPECS: dict[str, Operator] = {}


def is_array(x) -> bool:
    """Whether ``x`` is a ``torch.Tensor``."""
    return isinstance(x, torch.Tensor)


def _call(name: str, inputs, static) -> Call:
    """The :class:`~xlinalg.core.apply.Call` of already prepared ``inputs``."""
    params, shapes, batch, _ = static
    return Call(_SPECS[name], _xp, _KERN, tuple(inputs), shapes, batch, dict(params))


#: The attribute that carries a forward's residuals from ``forward`` to ``setup_context`` (which
#: removes it) on the first output: ``forward`` has no ``ctx``.
_RESIDUALS = "_xlinalg_residuals"


def _own(y):
    """``y``, copied when it is a view (e.g. a transpose): forward-mode AD requires the outputs
    of a ``torch.autograd.Function`` with a ``jvp`` not to be views."""
    return y.clone(memory_format=torch.contiguous_format) if y._is_view() else y


def function_class(op: Operator, *, forward_mode: bool = True) -> type:
    """The ``torch.autograd.Function`` subclass of ``op``.

    ``apply(*inputs, static)``: ``inputs`` are the broadcast tensors of a prepared call,
    ``static`` is ``(params as (name, value) pairs, original shapes, batch shape, save)``;
    ``save``: the backward pass will run, so a forward that can keep residuals for it
    (:func:`xlinalg.core.apply.forward_saving`: eager CPU tensors) keeps them on the context.
    ``forward_mode=False`` leaves out the ``jvp`` method, which ``torch.compile`` cannot trace
    (the class used while compiling; it keeps no residuals).
    """
    name, nargs, multiple = op.name, len(op.args), op.multiple_outputs
    if _SPECS.setdefault(name, op) is not op:  # another spec of the same name
        name = f"{op.name}#{len(_SPECS)}"
        _SPECS[name] = op

    def forward(*args):
        inputs, static = args[:nargs], args[nargs]
        call = _call(name, inputs, static)
        if forward_mode and static[3]:
            outputs, residuals = apply.forward_saving(call)
        else:
            outputs, residuals = apply.forward(call), None
        if forward_mode:
            outputs = tuple(_own(y) for y in outputs)
        if residuals is not None:
            setattr(outputs[0], _RESIDUALS, residuals)
        return tuple(outputs) if multiple else outputs[0]

    # The explicit signature tells ``torch.compile`` that ``forward`` takes no ``ctx``.
    forward.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_ONLY) for n in (*op.arg_names, "static")]
    )

    def setup_context(ctx, inputs, output):
        outputs = tuple(output) if multiple else (output,)
        tensors = tuple(inputs[:nargs]) + outputs
        ctx.save_for_backward(*tensors)
        ctx.save_for_forward(*tensors)
        ctx.static = inputs[nargs]
        ctx.residuals = outputs[0].__dict__.pop(_RESIDUALS, None) if forward_mode else None

    def backward(ctx, *cotangents):
        saved = ctx.saved_tensors
        inputs, outputs = saved[:nargs], saved[nargs:]
        call = _call(name, inputs, ctx.static)
        grads = apply.vjp(call, outputs, cotangents, unbroadcast=False, residuals=ctx.residuals)
        return (*grads, None)

    def jvp(ctx, *tangents):
        saved = ctx.saved_tensors
        inputs, outputs = saved[:nargs], saved[nargs:]
        out = apply.jvp(_call(name, inputs, ctx.static), outputs, tangents[:nargs])
        return tuple(out) if multiple else out[0]

    namespace = {
        "forward": staticmethod(forward),
        "setup_context": staticmethod(setup_context),
        "backward": staticmethod(backward),
        "generate_vmap_rule": True,
        "spec_name": name,
        "__doc__": f"xlinalg operator {op.name} as a torch.autograd.Function.",
        "__module__": __name__,
    }
    if forward_mode:
        namespace["jvp"] = staticmethod(jvp)
    suffix = "Function" if forward_mode else "CompiledFunction"
    return type(f"{op.name.capitalize()}{suffix}", (torch.autograd.Function,), namespace)


try:  # what torch.autograd.Function.apply runs once it has bound the arguments (below)
    from torch._C import _are_functorch_transforms_active as _transforms_active
    from torch._functorch.utils import unwrap_dead_wrappers as _unwrap_dead_wrappers
except ImportError:  # pragma: no cover - present in every torch >= 2.1
    _transforms_active = None


def _applier(cls: type):
    """``cls.apply`` for eager calls. ``torch.autograd.Function.apply`` binds the arguments to
    ``forward``'s signature on every call (≈ 13 µs, a third of a small call's cost), which is
    the identity for these positional-only ``forward`` methods; outside ``torch.func``
    transforms this goes straight to the base class's ``apply`` as ``Function.apply`` then
    does. Inside transforms (and without the private hooks) it is ``cls.apply`` itself."""
    if _transforms_active is None:  # pragma: no cover
        return cls.apply
    direct = super(torch.autograd.Function, cls).apply

    def apply(*args):
        if _transforms_active():
            return cls.apply(*args)
        return direct(*_unwrap_dead_wrappers(args))

    return apply


def _plain_autograd() -> bool:
    """Whether only plain reverse-mode autograd can differentiate an eager call: no
    ``torch.func`` transform runs and no forward-mode dual level is open
    (``torch.autograd.forward_ad``). Such a call needs no ``autograd.Function``: the C++ node
    records it where it can run it, and a call that records no graph (grad mode off, or no
    input requiring grad) needs no node at all (≈ 15 µs of a small forward)."""
    if _transforms_active is None or _transforms_active():
        return False
    return getattr(torch.autograd.forward_ad, "_current_level", 0) < 0


def _recorded_vjp(context, inputs, outputs, cotangents):
    """The input cotangents of a recorded backward pass through the C++ node
    (``create_graph=True``): the composed rules on the saved tensors, differentiable."""
    name, static = context
    return apply.vjp(_call(name, inputs, static), outputs, cotangents, unbroadcast=False)


def _single_blas():
    lapack.use_blas_threads(1)


torch_node.set_hooks(_recorded_vjp, _single_blas)


def _node_call(name: str, call: Call, save: bool, signature=None):
    """The outputs of an eager CPU call through the C++ node (:mod:`xlinalg.lapack.torch_node`),
    or ``None`` when the node cannot run it (the ``autograd.Function`` then does).
    ``signature``: see :func:`xlinalg.lapack.torch_node.forward`."""
    plan = torch_node.plan(call.op, save)
    if plan is None:
        return None
    if not eager_single_blas(call.op.name, call.inputs):
        return None
    context = (name, (tuple(call.params.items()), call.shapes, call.batch, False)) if save else None
    outputs, status = torch_node.forward(call, plan, torch.get_num_threads() > 1, context, signature)
    if status is not None:
        apply.checked(call, outputs, status)
    return outputs if call.op.multiple_outputs else outputs[0]


def prepare(op: Operator, arrays, params) -> Call:
    """:func:`xlinalg.core.apply.prepare` for tensors (mixed libraries raise ``TypeError``)."""
    if all(isinstance(x, torch.Tensor) for x in arrays):
        return apply.prepare(op, arrays, params, xp=_xp)
    return apply.prepare(op, arrays, params)


#: One key per bound function, the operator's part of a remembered call's signature.
_signature_keys = itertools.count()


def bind(op: Operator):
    """``op`` as a differentiable function of tensors: ``f(*arrays, **params)`` returning a
    tensor, or a tuple for operators with several outputs."""
    cls = function_class(op)
    name = cls.spec_name
    traceable = function_class(op, forward_mode=False)
    apply_eagerly = _applier(cls)
    names = op.arg_names
    key = next(_signature_keys)

    def failed(arrays, params, outputs, status):  # a remembered call's failing batch entry
        apply.checked(prepare(op, arrays, params), outputs, status)

    def fn(*arrays, **params):
        compiling = torch.compiler.is_compiling()
        plain = not compiling and _plain_autograd()
        if plain:  # a call whose signature the node remembers runs from it, with no Python
            fast = torch_node.fast_path()
            if fast is not None:
                result = fast(key, arrays, params, failed)
                if result is not None:
                    return result
        call = prepare(op, arrays, params)
        if call.xp is not _xp:
            raise TypeError(f"{op.name}: expected torch tensors for {', '.join(names)}")
        if compiling:
            return traceable.apply(*call.inputs, (tuple(call.params.items()), call.shapes, call.batch, False))
        save = torch.is_grad_enabled() and any(x.requires_grad for x in call.inputs)
        if plain:
            unbroadcast = all(x is y for x, y in zip(call.inputs, arrays))
            result = _node_call(name, call, save, (key, arrays, params) if unbroadcast else None)
            if result is not None:
                return result
            if not save:  # no graph node: the rule's outputs themselves
                outputs = tuple(_own(y) for y in apply.forward(call))
                return outputs if op.multiple_outputs else outputs[0]
        return apply_eagerly(*call.inputs, (tuple(call.params.items()), call.shapes, call.batch, save))

    fn.function = cls
    return bind_metadata(fn, op, "xlinalg.torch")
