"""What the examples share: one namespace ``F`` per framework, through which a model function
written once runs in NumPy, PyTorch, JAX and MXNet, and the code that fits, times and compares.

A model is a plain function ``model(F, theta, *data)``. It calls xlinalg's operators as
``F.potrf``, ``F.trsm``, … and the few elementwise operations it needs as ``F.exp``,
``F.sum``, …; Python arithmetic, indexing and ``.reshape`` work on the arrays directly. In
PyTorch, JAX and MXNet the ``F.<operator>`` are xlinalg's own functions, differentiated by the
framework's autograd. NumPy has no autograd, so its ``F`` records every operation on a tape
(:class:`Var`) and differentiates the model in reverse mode: each xlinalg operator through
:func:`xlinalg.vjp`, each elementwise operation through its textbook derivative.

    F = framework("torch")
    value_and_grad = F.value_and_grad(model)       # (theta: ndarray, *data) -> (float, ndarray)
    value, grad = value_and_grad(theta, *F.data(X, y))

Two operations make one model serve every framework efficiently: ``F.scan`` (a Python loop,
or ``jax.lax.scan`` in JAX, which compiles the loop body once) and ``F.vmap`` (the arrays'
own batch axes, or ``jax.vmap`` in JAX).
"""

from __future__ import annotations

import importlib.util
import math
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize

import xlinalg

FRAMEWORKS = ("numpy", "torch", "jax", "mxnet")
#: The xlinalg operators the examples use, bound into every ``F``.
OPERATORS = ("gemm", "gemm2", "potrf", "potrs", "trsm", "trmm", "syrk", "sumlogdiag")
LOG_2PI = math.log(2 * math.pi)


def installed(name: str) -> bool:
    """Whether framework ``name`` can be imported here (NumPy always can)."""
    return name == "numpy" or importlib.util.find_spec(name) is not None


# ---- reverse mode for NumPy -------------------------------------------------------------------
class Var:
    """A NumPy array on the tape: its ``value``, the nodes it was computed from (``parents``)
    and ``pullback``, which maps the cotangent ``ḡ`` of ``value`` to the cotangents of the
    parents (a tuple, ``None`` for a parent that is a constant).

    Arithmetic broadcasts as NumPy does; the cotangent of a broadcast operand is summed back to
    its shape.
    """

    __array_priority__ = 1000  # ndarray ⊕ Var defers to Var's reflected operator
    __slots__ = ("value", "parents", "pullback")

    def __init__(self, value, parents=(), pullback=None):
        self.value = np.asarray(value)
        self.parents = parents
        self.pullback = pullback

    shape = property(lambda self: self.value.shape)
    ndim = property(lambda self: self.value.ndim)
    dtype = property(lambda self: self.value.dtype)

    def __len__(self):
        return len(self.value)

    def __repr__(self):
        return f"Var({self.value!r})"

    # ∂(x ± y) = ḡ, ±ḡ;  ∂(x y) = ḡ y, ḡ x;  ∂(x / y) = ḡ / y, −ḡ x / y²
    def __add__(self, other):
        return _binary(np.add, self, other, lambda g, x, y, z: (g, g))

    def __sub__(self, other):
        return _binary(np.subtract, self, other, lambda g, x, y, z: (g, -g))

    def __mul__(self, other):
        return _binary(np.multiply, self, other, lambda g, x, y, z: (g * y, g * x))

    def __truediv__(self, other):
        return _binary(np.divide, self, other, lambda g, x, y, z: (g / y, -g * z / y))

    def __radd__(self, other):
        return _binary(np.add, other, self, lambda g, x, y, z: (g, g))

    def __rsub__(self, other):
        return _binary(np.subtract, other, self, lambda g, x, y, z: (g, -g))

    def __rmul__(self, other):
        return _binary(np.multiply, other, self, lambda g, x, y, z: (g * y, g * x))

    def __rtruediv__(self, other):
        return _binary(np.divide, other, self, lambda g, x, y, z: (g / y, -g * z / y))

    def __neg__(self):
        return Var(-self.value, (self,), lambda g: (-g,))

    def __pow__(self, p):
        if isinstance(p, Var):
            raise TypeError("Var ** Var is not supported: only constant exponents")
        x = self.value
        return Var(x**p, (self,), lambda g: (g * p * x ** (p - 1),))

    def __getitem__(self, index):
        shape = self.shape

        def pullback(g):
            full = np.zeros(shape, dtype=g.dtype)
            np.add.at(full, index, g)
            return (full,)

        return Var(self.value[index], (self,), pullback)

    def reshape(self, *shape):
        old = self.shape
        return Var(self.value.reshape(*shape), (self,), lambda g: (g.reshape(old),))


def _value(x):
    return x.value if isinstance(x, Var) else x


def _unbroadcast(g, shape):
    """Sum ``g`` down to ``shape`` (the cotangent of an operand that was broadcast)."""
    if g.shape == tuple(shape):
        return g
    g = g.sum(axis=tuple(range(g.ndim - len(shape))))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _binary(fn, a, b, rule):
    x, y = np.asarray(_value(a)), np.asarray(_value(b))
    z = fn(x, y)

    def pullback(g):
        gx, gy = rule(g, x, y, z)
        return _unbroadcast(gx, x.shape), _unbroadcast(gy, y.shape)

    return Var(z, (a, b), pullback)


def _topological(root):
    """The nodes that ``root`` depends on, each after all of its parents."""
    order, visited, done, stack = [], set(), set(), [(root, False)]
    while stack:  # depth-first, a node is emitted once all of its parents are
        node, expanded = stack.pop()
        if expanded:
            if id(node) not in done:
                done.add(id(node))
                order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p in node.parents if isinstance(p, Var) and id(p) not in visited)
    return order


def backward(root: Var, leaf: Var):
    """``∂ root / ∂ leaf`` for a scalar ``root``, by one reverse sweep over the tape."""
    grads = {id(root): np.ones_like(root.value)}
    for node in reversed(_topological(root)):
        g = grads.get(id(node))
        if g is None or node.pullback is None:
            continue
        for parent, gp in zip(node.parents, node.pullback(g)):
            if isinstance(parent, Var) and gp is not None:
                k = id(parent)
                grads[k] = grads[k] + gp if k in grads else gp
    return grads.get(id(leaf), np.zeros_like(leaf.value))


def _taped_operator(name):
    fn = getattr(xlinalg, name)

    def op(*arrays, **params):
        if not any(isinstance(a, Var) for a in arrays):
            return fn(*arrays, **params)
        out, pullback = xlinalg.vjp(fn, *(_value(a) for a in arrays), **params)
        return Var(out, arrays, pullback)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``xlinalg.{name}`` on the tape (derivative: ``xlinalg.vjp``)."
    return op


def _taped_exp(x):
    if not isinstance(x, Var):
        return np.exp(x)
    z = np.exp(x.value)
    return Var(z, (x,), lambda g: (g * z,))


def _taped_log(x):
    if not isinstance(x, Var):
        return np.log(x)
    v = x.value
    return Var(np.log(v), (x,), lambda g: (g / v,))


def _taped_sum(x, axis=None):
    if not isinstance(x, Var):
        return np.sum(x, axis=axis)
    shape = x.shape
    axes = tuple(range(len(shape))) if axis is None else tuple(a % len(shape) for a in np.atleast_1d(axis))

    def pullback(g):
        return (np.broadcast_to(np.expand_dims(g, axes), shape).copy(),)

    return Var(np.sum(x.value, axis=axes), (x,), pullback)


def _taped_stack(xs, axis=0):
    xs = list(xs)
    out = np.stack([_value(x) for x in xs], axis=axis)
    if not any(isinstance(x, Var) for x in xs):
        return out
    return Var(out, tuple(xs), lambda g: tuple(np.moveaxis(g, axis, 0)))


def _taped_concat(xs, axis=0):
    xs = list(xs)
    out = np.concatenate([_value(x) for x in xs], axis=axis)
    if not any(isinstance(x, Var) for x in xs):
        return out
    splits = np.cumsum([np.shape(_value(x))[axis] for x in xs])[:-1]
    return Var(out, tuple(xs), lambda g: tuple(np.split(g, splits, axis=axis)))


# ---- one namespace per framework --------------------------------------------------------------
def _tree_map(fn, tree):
    return tuple(_tree_map(fn, t) for t in tree) if isinstance(tree, tuple) else fn(tree)


def _loop_scan(stack):
    """``scan`` as a Python loop, with ``stack`` to gather the per-step outputs."""

    def scan(step, carry, xs, reverse=False):
        first = xs
        while isinstance(first, tuple):
            first = first[0]
        n = first.shape[0]
        ys = [None] * n
        for t in range(n - 1, -1, -1) if reverse else range(n):
            carry, ys[t] = step(carry, _tree_map(lambda a: a[t], xs))

        def gather(*leaves):
            return stack(leaves) if not isinstance(leaves[0], tuple) else tuple(gather(*z) for z in zip(*leaves))

        return carry, gather(*ys)

    return scan


@dataclass
class Framework:
    """The namespace ``F`` a model is written against.

    Attributes
    ----------
    name : str
        ``"numpy"``, ``"torch"``, ``"jax"`` or ``"mxnet"``.
    exp, log : callable
        Elementwise functions.
    sum : callable
        ``sum(x, axis=None)``; ``axis`` an int or a tuple of ints (negative allowed).
    stack, concat : callable
        ``stack(sequence, axis=0)``, ``concat(sequence, axis=0)``.
    scan : callable
        ``scan(step, carry, xs, reverse=False) -> (carry, ys)`` with the semantics of
        ``jax.lax.scan``: ``carry, y_t = step(carry, xs[t])`` for ``t = 0 … n−1`` (or backwards),
        ``ys`` the ``y_t`` stacked on a new leading axis. ``xs`` and ``y_t`` are arrays or
        (nested) tuples of arrays.
    gemm, gemm2, potrf, potrs, trsm, trmm, syrk, sumlogdiag : callable
        xlinalg's operators (on the NumPy tape for ``numpy``).
    """

    name: str
    exp: object
    log: object
    sum: object
    stack: object
    concat: object
    scan: object
    _to_array: object = field(repr=False)
    _value_and_grad: object = field(repr=False)
    _evaluate: object = field(repr=False)
    _vmap: object = field(default=None, repr=False)

    def data(self, *arrays):
        """NumPy arrays → this framework's float64 arrays (constants of the model)."""
        out = tuple(self._to_array(np.asarray(a, dtype=np.float64)) for a in arrays)
        return out if len(out) != 1 else out[0]

    def value_and_grad(self, model):
        """``(theta, *data) -> (value, gradient)`` of the scalar ``model(F, theta, *data)``;
        ``theta`` and the gradient are float64 NumPy arrays of one shape, ``value`` a float."""
        return self._value_and_grad(lambda theta, *data: model(self, theta, *data))

    def evaluate(self, model):
        """``(theta, *data) -> outputs`` of ``model(F, theta, *data)`` as NumPy arrays (no
        derivatives; compiled once in JAX)."""
        return self._evaluate(lambda theta, *data: model(self, theta, *data))

    def vmap(self, model, in_axes):
        """``model`` mapped over a batch axis: ``jax.vmap`` in JAX; elsewhere ``model`` itself,
        which must then broadcast over leading batch axes as xlinalg's operators do.
        ``in_axes`` names the batch axis of ``theta`` and of each data argument (``None``:
        shared), as in ``jax.vmap``."""
        if self._vmap is None:
            return model
        return lambda F, *args: self._vmap(lambda *a: model(F, *a), in_axes)(*args)


def _numpy():
    def value_and_grad(fn):
        def run(theta, *data):
            leaf = Var(np.array(theta, dtype=np.float64))
            out = fn(leaf, *data)
            if not isinstance(out, Var):  # the model does not depend on theta
                return float(out), np.zeros_like(leaf.value)
            return float(out.value), backward(out, leaf)

        return run

    def evaluate(fn):
        return lambda theta, *data: _tree_map(_value, fn(np.asarray(theta, dtype=np.float64), *data))

    return Framework(
        "numpy", _taped_exp, _taped_log, _taped_sum, _taped_stack, _taped_concat, _loop_scan(_taped_stack),
        _to_array=lambda a: a, _value_and_grad=value_and_grad, _evaluate=evaluate,
    )


def _torch():
    import contextlib

    import torch

    @contextlib.contextmanager
    def one_thread():
        # These models work on 2×2 … 8×8 matrices (at most a batch of them): PyTorch's
        # intra-op threads have next to nothing to share, and when the cores are busy waiting
        # for them costs several times the work itself. Restored afterwards.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)

    def value_and_grad(fn):
        def run(theta, *data):
            with one_thread():
                theta = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
                out = fn(theta, *data)
                (grad,) = torch.autograd.grad(out, theta)
            return float(out.detach()), grad.numpy()

        return run

    def evaluate(fn):
        def run(theta, *data):
            with one_thread(), torch.no_grad():
                return _tree_map(lambda t: t.numpy(), fn(torch.tensor(theta, dtype=torch.float64), *data))

        return run

    def tsum(x, axis=None):
        return torch.sum(x) if axis is None else torch.sum(x, dim=axis)

    return Framework(
        "torch", torch.exp, torch.log, tsum,
        lambda xs, axis=0: torch.stack(list(xs), dim=axis),
        lambda xs, axis=0: torch.cat(list(xs), dim=axis),
        _loop_scan(lambda xs: torch.stack(list(xs))),
        _to_array=torch.from_numpy,
        _value_and_grad=value_and_grad, _evaluate=evaluate,
    )


def _jax():
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def value_and_grad(fn):
        compiled = jax.jit(jax.value_and_grad(fn))

        def run(theta, *data):
            value, grad = compiled(jnp.asarray(theta, dtype=jnp.float64), *data)
            return float(value), np.asarray(grad)

        return run

    def evaluate(fn):
        compiled = jax.jit(fn)
        return lambda theta, *data: _tree_map(np.asarray, compiled(jnp.asarray(theta, dtype=jnp.float64), *data))

    def scan(step, carry, xs, reverse=False):
        return jax.lax.scan(step, carry, xs, reverse=reverse)

    return Framework(
        "jax", jnp.exp, jnp.log, lambda x, axis=None: jnp.sum(x, axis=axis),
        lambda xs, axis=0: jnp.stack(list(xs), axis=axis),
        lambda xs, axis=0: jnp.concatenate(list(xs), axis=axis),
        scan, _to_array=jnp.asarray,
        _value_and_grad=value_and_grad, _evaluate=evaluate, _vmap=jax.vmap,
    )


def _mxnet():
    import mxnet as mx

    def to_array(a):
        return mx.nd.array(a, dtype="float64")

    def value_and_grad(fn):
        def run(theta, *data):
            theta = to_array(theta)
            theta.attach_grad()
            with mx.autograd.record():
                out = fn(theta, *data)
            out.backward()
            return float(out.asnumpy().reshape(())), theta.grad.asnumpy()

        return run

    def evaluate(fn):
        return lambda theta, *data: _tree_map(lambda a: a.asnumpy(), fn(to_array(theta), *data))

    def msum(x, axis=None):
        return mx.nd.sum(x) if axis is None else mx.nd.sum(x, axis=axis)

    return Framework(
        "mxnet", mx.nd.exp, mx.nd.log, msum,
        lambda xs, axis=0: mx.nd.stack(*xs, axis=axis),
        lambda xs, axis=0: mx.nd.concat(*xs, dim=axis),
        _loop_scan(lambda xs: mx.nd.stack(*xs)),
        _to_array=to_array,
        _value_and_grad=value_and_grad, _evaluate=evaluate,
    )


_BUILDERS = {"numpy": _numpy, "torch": _torch, "jax": _jax, "mxnet": _mxnet}
_CACHE: dict = {}


def framework(name: str) -> Framework:
    """The namespace ``F`` of framework ``name`` (imports the framework)."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown framework {name!r}; choose from {', '.join(FRAMEWORKS)}")
    if name not in _CACHE:
        F = _BUILDERS[name]()
        for op in OPERATORS:
            setattr(F, op, _taped_operator(op) if name == "numpy" else getattr(xlinalg, op))
        _CACHE[name] = F
    return _CACHE[name]


# ---- fitting, timing and comparing ------------------------------------------------------------
def minimize(value_and_grad, theta0, **options):
    """L-BFGS-B on ``value_and_grad`` (a ``(theta) -> (float, gradient)``) from ``theta0``
    of any shape; returns SciPy's result with ``x`` in ``theta0``'s shape and ``seconds``."""
    theta0 = np.asarray(theta0, dtype=np.float64)
    shape = theta0.shape

    def flat(x):
        value, grad = value_and_grad(x.reshape(shape))
        return value, np.asarray(grad, dtype=np.float64).ravel()

    start = time.perf_counter()
    result = scipy.optimize.minimize(flat, theta0.ravel(), jac=True, method="L-BFGS-B", options=options or None)
    result.seconds = time.perf_counter() - start
    result.x = result.x.reshape(shape)
    return result


def spread(results: dict, key) -> float:
    """Largest absolute difference of ``results[framework][key]`` between any framework and
    the first one (0 with fewer than two)."""
    names = list(results)
    ref = np.asarray(results[names[0]][key])
    return max((float(np.max(np.abs(np.asarray(results[n][key]) - ref), initial=0.0)) for n in names[1:]), default=0.0)


def select(frameworks, out=print):
    """The installed ones among ``frameworks``, in order; reports the others as skipped."""
    chosen = []
    for name in frameworks:
        if name not in FRAMEWORKS:
            raise SystemExit(f"unknown framework {name!r}; choose from {', '.join(FRAMEWORKS)}")
        if installed(name):
            chosen.append(name)
        else:
            out(f"{name:<10} (not installed in this environment: skipped)")
    return chosen


def check_agreement(results: dict, tolerances: dict, out=print) -> dict:
    """Print the largest difference between frameworks for each key of ``tolerances``; exit
    with an error when one exceeds its tolerance. Returns the differences."""
    diffs = {key: spread(results, key) for key in tolerances}
    out("largest difference between frameworks: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    bad = [k for k, v in diffs.items() if not v <= tolerances[k]]
    if bad and len(results) > 1:
        raise SystemExit("the frameworks disagree on " + ", ".join(f"{k} (tolerance {tolerances[k]:g})" for k in bad))
    return diffs
