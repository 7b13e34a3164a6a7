"""The compiled layer in JAX through XLA FFI (:mod:`xlinalg.lapack.jax_ffi`): every operator of
its table, every parameter combination, float32 and float64, against the composed rules.

``XLINALG_KERNELS`` cannot change in-process, so the reference is a ``dataclasses.replace``
copy of each operator: it is not the registered spec, so it never gets the compiled rules and
runs the core's composed rules through the same adapter. Skipped where the FFI library is not
available (no compiler, ``XLINALG_KERNELS=python``)."""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from tests.jax_adapter.jax_cases import JAX_INSTALLED

if not JAX_INSTALLED:
    pytest.skip("jax is not installed", allow_module_level=True)

import jax
import jax.numpy as jnp

import xlinalg
import xlinalg.jax
from tests.jax_adapter.jax_cases import case_id, inputs
from xlinalg.adapters import jax as adapter
from xlinalg.core import apply, operators, samples
from xlinalg.lapack import jax_ffi, rules

if jax_ffi.library() is None:
    pytest.skip(f"the JAX FFI kernels are not available: {jax_ffi.reason()}", allow_module_level=True)

NAMES = sorted(jax_ffi.TABLE)
PURE = {name: replace(operators()[name]) for name in NAMES}
GRID = [(name, p) for name in NAMES for p in operators()[name].param_grid()]
DTYPES = ("float64", "float32")
#: 0, 1, small (unblocked potrf), 30 (LAPACK potrf, one reverse block), 150 (blocked reverse)
ORDERS = (0, 1, 5, 30, 150)
#: the cases whose JVP is checked too: order 5 and the broadcast batch
JVP_CASES = (2, len(ORDERS))
TOL = {"float64": 1e-10, "float32": 2e-4}


@functools.cache
def _drawn(name, lower, shapes, batch, n, rightside):
    params = {**operators()[name].params}
    params.update({k: v for k, v in (("lower", lower), ("rightside", rightside)) if k in params})
    return inputs(name, params, np.random.default_rng(n + 100 * len(batch)), batch=batch, n=n)


def _inputs(name, params, n, batch=(), dtype="float64"):
    """``inputs`` drawn once per operator, triangle, shapes and batch (drawing a large sample
    costs an SVD), in ``dtype``."""
    shapes = samples.core_shapes(operators()[name], n, params)
    arrays = _drawn(name, params.get("lower"), shapes, batch, n, params.get("rightside"))
    return tuple(x.astype(dtype) for x in arrays)


def _fns(name, params):
    """(the FFI path, the composed path): arrays in, tuple of outputs out."""
    return adapter.differentiable(operators()[name], params), adapter.differentiable(PURE[name], params)


def _close(got, want, dtype, what):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert not np.isnan(got).any() and not np.isnan(want).any(), what
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    err = float(np.max(np.abs(got - want), initial=0.0)) / scale
    assert err <= TOL[dtype], f"{what}: relative error {err:.2e}"


def _reference(name, params, xs, ws, ts):
    """The composed rules on NumPy in float64 (the ``PURE`` copy, so no compiled rule runs):
    outputs, Σ w·outputs, its gradient (summed to the inputs' shapes) and its JVP along ts."""
    xs, ws, ts = ([np.asarray(v, dtype=np.float64) for v in group] for group in (xs, ws, ts))
    call = apply.prepare(PURE[name], xs, params)
    outputs = apply.forward(call)
    grads = apply.vjp(call, outputs, ws)
    tangent = sum(np.sum(w * t) for w, t in zip(ws, apply.jvp(call, outputs, ts)))
    return outputs, sum(np.sum(w * y) for w, y in zip(ws, outputs)), grads, tangent


def _loss(fn, ws):
    return lambda *a: sum(jnp.sum(w * y) for w, y in zip(ws, fn(*a)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, params", GRID, ids=[case_id(*c) for c in GRID])
def test_jit_values_grad_jvp_vmap(name, params, dtype):
    """Jitted: outputs, ``grad`` (the FFI VJP) and ``jvp`` at orders 0, 1, 5, 30, 150 and for
    a broadcast batch (the first argument unbatched: its gradient is summed back), and
    ``vmap`` of ``value_and_grad`` with the first argument unmapped, equal the composed rules
    (on NumPy, float64, at the same inputs)."""
    rng = np.random.default_rng(0)
    cases = [_inputs(name, params, n, dtype=dtype) for n in ORDERS]
    batched = list(_inputs(name, params, 4, (3, 2), dtype))
    batched[0] = batched[0][0, 0]
    cases.append(tuple(batched))
    tangents = [tuple(rng.standard_normal(x.shape).astype(dtype) for x in xs) for xs in cases]
    refs = []
    for xs, ts in zip(cases, tangents):
        call = apply.prepare(PURE[name], [x.astype(np.float64) for x in xs], params)
        ws = tuple(rng.standard_normal(y.shape).astype(dtype) for y in apply.forward(call))
        refs.append((ws, _reference(name, params, xs, ws, ts)))
    mapped = _inputs(name, params, 4, (2,), dtype)
    if len(mapped) > 1:  # the first argument unmapped
        in_axes = (None, *[0] * (len(mapped) - 1))
        vm_args = (_inputs(name, params, 4, dtype=dtype)[0], *mapped[1:])
    else:
        in_axes, vm_args = (0,), mapped
    first = [x if axis is None else x[0] for x, axis in zip(vm_args, in_axes)]
    shapes = [y.shape for y in apply.forward(apply.prepare(PURE[name], [x.astype(np.float64) for x in first], params))]
    vm_ws = tuple(rng.standard_normal(s).astype(dtype) for s in shapes)
    ffi = _fns(name, params)[0]
    argnums = tuple(range(len(cases[0])))

    @jax.jit
    def program(cases, tangents, weights, vm_args, vm_ws):
        result = []
        for i, (xs, ts, ws) in enumerate(zip(cases, tangents, weights)):
            loss = _loss(ffi, ws)
            value, grads = jax.value_and_grad(loss, argnums)(*xs)
            # forward mode is the composed JVP at the FFI's outputs: two orders suffice
            tangent = jax.jvp(loss, xs, ts)[1] if i in JVP_CASES else jnp.zeros(())
            result.append((ffi(*xs), value, grads, tangent))
        vm = jax.vmap(jax.value_and_grad(_loss(ffi, vm_ws), argnums), in_axes=in_axes)(*vm_args)
        return result, vm

    weights = [ws for ws, _ in refs]
    got, vm = program(cases, tangents, weights, vm_args, vm_ws)
    for i, (xs, g, (_, want)) in enumerate(zip(cases, got, refs)):
        what = f"{name} {params} {dtype} shapes {[x.shape for x in xs]}"
        outputs, value, grads, tangent = g
        for a, b in zip(outputs, want[0]):
            assert a.dtype == jnp.dtype(dtype), what
            _close(a, b, dtype, what + " outputs")
        _close(value, want[1], dtype, what + " value")
        for a, b, x in zip(grads, want[2], xs):
            assert a.dtype == jnp.dtype(dtype) and a.shape == x.shape, what
            _close(a, b, dtype, what + " grad")
        if i in JVP_CASES:
            _close(tangent, want[3], dtype, what + " jvp")
    for i in range(2):
        xs = tuple(x if axis is None else x[i] for x, axis in zip(vm_args, in_axes))
        _, value, grads, _ = _reference(name, params, xs, vm_ws, xs)
        _close(vm[0][i], value, dtype, f"{name} vmap value")
        for a, b in zip(vm[1], grads):
            _close(a[i], b, dtype, f"{name} vmap grad")


def _subset(name):
    """The parameter combinations of the (costlier) second-order test: the default and, where
    the grid has more, every parameter flipped."""
    op = operators()[name]
    grid = op.param_grid()
    flipped = {k: (not v if isinstance(v, bool) else -1.5) for k, v in op.params.items()}
    return grid if len(grid) <= 2 else [dict(op.params), flipped]


SECOND = [(name, p) for name in NAMES for p in _subset(name)]


@pytest.mark.parametrize("name, params", SECOND, ids=[case_id(*c) for c in SECOND])
def test_eager_grad_hessian_and_grad_of_grad(name, params):
    """Eager ``grad`` equals the composed rules; ``hessian`` and ``grad`` of ``grad`` (which
    differentiate the composed rules behind the FFI VJP) and ``jacrev`` of ``jacfwd`` (the JVP
    of the tangent primitive) equal the composed path's, jitted (float64, order 3)."""
    rng = np.random.default_rng(1)
    ffi, pure = _fns(name, params)
    xs = inputs(name, params, rng, n=3)
    call = apply.prepare(PURE[name], xs, params)
    ws = tuple(rng.standard_normal(y.shape) for y in apply.forward(call))
    argnums = tuple(range(len(xs)))
    want = _reference(name, params, xs, ws, xs)[2]
    for a, b in zip(jax.grad(_loss(ffi, ws), argnums)(*map(jnp.asarray, xs)), want):
        _close(a, b, "float64", f"eager grad {name}")

    def second(fn):
        f = _loss(fn, ws)
        g = lambda *a: sum(jnp.sum(jnp.sin(t)) for t in jax.grad(f, argnums)(*a))  # noqa: E731
        return jax.jit(lambda *a: (jax.hessian(f, argnums)(*a), jax.grad(g, argnums)(*a), jax.jacrev(jax.jacfwd(f))(*a)))

    xs = tuple(map(jnp.asarray, xs))
    for a, b in zip(jax.tree.leaves(second(ffi)(*xs)), jax.tree.leaves(second(pure)(*xs))):
        _close(a, b, "float64", f"hessian / grad of grad {name}")


@pytest.mark.parametrize("name", NAMES)
def test_jitted_gradient_runs_the_ffi_entries(name):
    """A silent fallback to the composed rules would pass every numerical test: the lowered
    jitted gradient must hold both custom calls (forward and VJP) of the operator; for potrs,
    det and slogdet those of the variant whose forward keeps what the reverse reads (Y = L⁻¹B,
    the LU factors), and not the plain forward besides it."""
    rng = np.random.default_rng(2)
    xs = tuple(map(jnp.asarray, inputs(name, {}, rng, batch=(2,), n=4)))
    fn = getattr(xlinalg.jax, name)
    text = jax.jit(jax.grad(lambda *a: _sum_sin(fn(*a)))).lower(*xs).as_text()
    spec = jax_ffi.SAVING.get(name, jax_ffi.TABLE[name])
    assert spec.target("forward", "float64") in text and spec.target("vjp", "float64") in text
    if name in jax_ffi.SAVING:
        assert f"@{jax_ffi.TABLE[name].target('forward', 'float64')}(" not in text
    pure = adapter.differentiable(PURE[name], dict(operators()[name].params))
    assert "xl_ffi" not in jax.jit(jax.grad(lambda *a: _sum_sin(pure(*a)))).lower(*xs).as_text()


def test_eager_calls_compile_no_program(caplog):
    """Eagerly (concrete arrays) the compiled rules run on NumPy views of the arrays, not
    through an XLA program compiled for each new input signature: calls at shapes never seen
    before compile nothing, and agree with the jitted FFI entries (for gemm and gemm2, which
    have no FFI entries, with the jitted composed rule)."""
    xlinalg.jax.potrf(jax.device_put(np.eye(3)))  # the process's one-off set-up
    for name in sorted(rules.RULES):
        fn = getattr(xlinalg.jax, name)
        for dtype in DTYPES:
            arrays = inputs(name, {}, np.random.default_rng(4), batch=(2,), n=7)
            xs = [jax.device_put(x.astype(dtype)) for x in arrays]  # a transfer: nothing compiled
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="jax"), jax.log_compiles():
                eager = fn(*xs)
            compiles = [r.getMessage() for r in caplog.records if "Compiling" in r.getMessage()]
            assert not compiles, f"{name} {dtype}: {compiles[0]}"
            for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jax.jit(fn)(*xs))):
                _close(a, b, dtype, f"eager vs jit {name}")


def _sum_sin(outputs):
    """A scalar loss of every output (one array, or a tuple of them)."""
    return sum(jnp.sum(jnp.sin(y)) for y in jax.tree.leaves(outputs))


def _failing(name, rng):
    """(clean, broken) inputs with batch (3,); entry 1 of the broken ones fails."""
    op = operators()[name]
    clean = inputs(name, {}, rng, batch=(3,), n=4)
    entry = op.breaks(tuple(x[1] for x in clean), dict(op.params))
    broken = [x.copy() for x in clean]
    for x, e in zip(broken, entry):
        x[1] = e
    return tuple(map(jnp.asarray, clean)), tuple(map(jnp.asarray, broken))


FAILING = [n for n in NAMES if operators()[n].failure is not None]


@pytest.mark.parametrize("name", FAILING)
def test_failures_raise_eagerly_and_are_nan_under_jit(name):
    """Eagerly the FFI status raises the same LinAlgError as the composed rules (cause and
    batch index), also under eager ``grad``; a NaN input names its own cause; under ``jit``
    and ``vmap`` entry 1 is NaN in every element and the others are unchanged."""
    rng = np.random.default_rng(3)
    clean, broken = _failing(name, rng)
    fn = getattr(xlinalg.jax, name)
    pure = adapter.differentiable(PURE[name], dict(operators()[name].params))
    nan = list(clean)
    nan[0] = nan[0].at[1, 3, 0 if name != "potrf" else 3].set(jnp.nan)  # in the read triangle
    for arrays in (broken, tuple(nan)):
        with pytest.raises(xlinalg.LinAlgError) as want:
            pure(*arrays)
        with pytest.raises(xlinalg.LinAlgError) as got:
            fn(*arrays)
        assert str(got.value) == str(want.value) and got.value.index == (1,), str(got.value)
        with pytest.raises(xlinalg.LinAlgError, match=r"batch index \(1,\)"):
            jax.grad(lambda *a: _sum_sin(fn(*a)))(*arrays)
    expected = jax.tree.leaves(fn(*clean))
    for run in (jax.jit(fn), jax.vmap(fn)):
        for out, want in zip(jax.tree.leaves(run(*broken)), expected, strict=True):
            out = np.asarray(out)
            assert np.isnan(out[1]).all()
            np.testing.assert_allclose(out[[0, 2]], np.asarray(want)[[0, 2]], rtol=1e-13, atol=1e-13)


def test_forward_mode_and_cotangent_shapes_with_broadcasting():
    """``potrs`` with ``F`` batched (2, 1) against ``B`` batched (3,): the cotangents come back
    in each argument's own shape, under jit and eagerly."""
    rng = np.random.default_rng(4)
    f = jnp.asarray(inputs("potrs", {}, rng, batch=(2, 1), n=5)[0])
    b = jnp.asarray(rng.standard_normal((3, 5, 2)))
    ffi, pure = _fns("potrs", {"lower": True})
    for run in (lambda g: g, jax.jit):
        got = run(jax.grad(lambda f, b: jnp.sum(ffi(f, b)[0] ** 2), (0, 1)))(f, b)
        want = jax.grad(lambda f, b: jnp.sum(pure(f, b)[0] ** 2), (0, 1))(f, b)
        assert got[0].shape == f.shape and got[1].shape == b.shape
        for a, w in zip(got, want):
            _close(a, w, "float64", "broadcast potrs")


_SUBPROCESS = """
import jax, jax.numpy as jnp, numpy as np
import xlinalg.jax as xj
from xlinalg.lapack import jax_ffi, rules
assert jax_ffi.library() is None, jax_ffi.reason()
print("REASON", jax_ffi.reason())
a = jnp.asarray(np.eye(3) * 2.0)
text = jax.jit(jax.grad(lambda a: jnp.sum(xj.potrf(a)))).lower(a).as_text()
assert "xl_ffi" not in text
print("OK", float(jnp.sum(xj.potrf(a))))
"""


@pytest.mark.parametrize(
    "env, reason",
    [({"XLINALG_KERNELS": "python"}, "XLINALG_KERNELS=python"), ({"CXX": "/nonexistent/c++"}, "no C++ compiler")],
    ids=["python-mode", "no-compiler"],
)
def test_without_the_library_the_composed_rules_run(env, reason, tmp_path):
    """``XLINALG_KERNELS=python``, or no compiler (and nothing cached): ``library()`` is
    ``None`` with its reason, nothing raises, the pure path runs."""
    full = {**os.environ, "XLINALG_CACHE_DIR": str(tmp_path), "XLINALG_KERNELS": "auto", **env}  # auto: the suite may run with "compiled"
    out = subprocess.run([sys.executable, "-c", _SUBPROCESS], env=full, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert reason in out.stdout and "OK 4.24264" in out.stdout, out.stdout


def test_the_handlers_refuse_mismatched_buffers():
    """The handlers check every call against the entry's row of the C ABI table: sizes that
    disagree, another batch or dtype, a missing attribute or operand is an error naming the
    entry and the buffer, never an out-of-bounds access."""
    f = jnp.eye(3)
    attrs = {"lower": np.int32(1), "threads": np.int32(1)}
    status = jax.ShapeDtypeStruct((), np.int32)

    def results(*shapes):
        return [jax.ShapeDtypeStruct(s, jnp.float64) for s in shapes]

    def call(target, res, *args, **extra):
        return jax.ffi.ffi_call(target, res)(*args, **{**attrs, **extra})

    out, code = call("xl_ffi_potrs_f64", [*results((3, 2)), status], f, jnp.ones((3, 2)))  # the valid call
    assert np.allclose(out, 1.0) and int(code) == 0
    with pytest.raises(Exception, match=r"xlinalg potrs: b must be \(batch, n, k\) for \(batch, n, n\)"):
        call("xl_ffi_potrs_f64", [*results((4, 2)), status], f, jnp.ones((4, 2)))
    with pytest.raises(Exception, match=r"xlinalg potrs: out must match b"):
        call("xl_ffi_potrs_f64", [*results((3, 5)), status], f, jnp.ones((3, 2)))
    with pytest.raises(Exception, match=r"xlinalg potrs: status must have one entry per matrix"):
        call("xl_ffi_potrs_f64", [*results((3, 2)), jax.ShapeDtypeStruct((2,), np.int32)], f, jnp.ones((3, 2)))
    with pytest.raises(Exception, match=r"xlinalg potrf_vjp: g must match f"):
        call("xl_ffi_potrf_vjp_f64", results((2, 3, 3)), jnp.ones((2, 3, 3)), jnp.ones((3, 3, 3)))
    with pytest.raises(Exception, match=r"xlinalg potrf: a has the wrong dtype"):
        call("xl_ffi_potrf_f64", [*results((3, 3)), status], f.astype(jnp.float32))
    with pytest.raises(Exception, match=r"xlinalg potrf: expected 1 operands and 2 results"):
        call("xl_ffi_potrf_f64", [*results((3, 3)), status], f, f)
    with pytest.raises(Exception, match=r"lower"):
        jax.ffi.ffi_call("xl_ffi_potrf_f64", [*results((3, 3)), status])(f, threads=np.int32(1))
