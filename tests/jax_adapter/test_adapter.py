"""The JAX adapter: namespace and dispatch, forward values, jit, vmap, dtypes and devices,
x64 on and off, errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.jax_adapter.jax_cases import JAX_INSTALLED

if not JAX_INSTALLED:
    pytest.skip("jax is not installed", allow_module_level=True)
import jax
import jax.numpy as jnp

import xlinalg
import xlinalg.jax as xj
from tests.jax_adapter.jax_cases import as_tuple, inputs, numpy_reference, spd, structured, weights
from xlinalg import adapters
from xlinalg.adapters import jax as jax_adapter

OPS = sorted(xlinalg.OPERATORS)


def _loss(name, params, w):
    f = structured(name, params, getattr(xj, name))
    return lambda *arrays: sum(jnp.sum(wi * y) for wi, y in zip(w, as_tuple(f(*arrays))))


# ---- namespace and dispatch -------------------------------------------------------------------
def test_namespace_has_every_operator_and_the_aliases():
    assert set(xj.FUNCTIONS) == set(xlinalg.OPERATORS)
    for name in xlinalg.OPERATORS:
        fn = getattr(xj, name)
        assert fn.operator is getattr(xlinalg, name).operator
        assert fn is adapters.bound(jax_adapter, fn.operator)  # one binding, shared with dispatch
        assert fn.__doc__ and "custom_jvp" in fn.__doc__
    for alias in ("cholesky", "eigh", "inv", "solve_triangular"):
        assert callable(getattr(xj, alias))


@pytest.mark.parametrize("name", OPS)
def test_dispatch_and_forward_match_numpy(name):
    rng = np.random.default_rng(0)
    arrays = inputs(name, {}, rng, batch=(2,), n=4)
    expected = numpy_reference(name, arrays, {})
    via_dispatch = as_tuple(getattr(xlinalg, name)(*map(jnp.asarray, arrays)))
    direct = as_tuple(getattr(xj, name)(*map(jnp.asarray, arrays)))
    for a, b, e in zip(via_dispatch, direct, expected):
        assert isinstance(a, jax.Array)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        np.testing.assert_allclose(np.asarray(a), e, rtol=1e-12, atol=1e-12)


def test_aliases():
    rng = np.random.default_rng(1)
    a = jnp.asarray(spd(rng, (2, 4, 4)))
    t = jnp.asarray(np.triu(rng.standard_normal((4, 4))) + 3 * np.eye(4))
    b = jnp.asarray(rng.standard_normal((2, 4, 3)))
    np.testing.assert_array_equal(xj.cholesky(a, upper=True), xj.potrf(a, lower=False))
    lam, v = xj.eigh(a)
    u, lam2 = xj.syevd(a)
    np.testing.assert_array_equal(lam, lam2)
    np.testing.assert_array_equal(v, u.mT)
    np.testing.assert_array_equal(xj.inv(a), xj.inverse(a))
    x = xj.solve_triangular(t, b, upper=True)
    np.testing.assert_allclose(t @ x, b, rtol=1e-12, atol=1e-12)
    y = xj.solve_triangular(t, b.mT, upper=True, left=False)
    np.testing.assert_allclose(y @ t, b.mT, rtol=1e-12, atol=1e-12)


def test_numpy_arguments_are_taken_as_jax_arrays():
    rng = np.random.default_rng(2)
    a = spd(rng, (4, 4))
    out = xj.potrf(a)
    assert isinstance(out, jax.Array)
    np.testing.assert_allclose(out, np.linalg.cholesky(a), rtol=1e-12)


# ---- jit ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", OPS)
def test_jit_value_and_grad(name):
    rng = np.random.default_rng(3)
    arrays = tuple(jnp.asarray(x) for x in inputs(name, {}, rng, batch=(2,), n=3))
    w = tuple(jnp.asarray(v) for v in weights(rng, as_tuple(getattr(xj, name)(*arrays))))
    loss = _loss(name, {}, w)
    argnums = tuple(range(len(arrays)))
    value, grads = jax.value_and_grad(loss, argnums=argnums)(*arrays)
    jvalue, jgrads = jax.jit(jax.value_and_grad(loss, argnums=argnums))(*arrays)
    np.testing.assert_allclose(jvalue, value, rtol=1e-12)
    for g, jg in zip(grads, jgrads):
        np.testing.assert_allclose(jg, g, rtol=1e-10, atol=1e-12)


def test_jit_with_static_parameters():
    rng = np.random.default_rng(4)
    a, b = (jnp.asarray(x) for x in inputs("trsm", {"lower": False}, rng, n=4))
    f = jax.jit(xj.trsm, static_argnames=("transpose", "lower", "alpha"))
    np.testing.assert_allclose(f(a, b, transpose=True, lower=False, alpha=2.0), xj.trsm(a, b, transpose=True, lower=False, alpha=2.0), rtol=1e-12)
    with pytest.raises(TypeError, match="trsm: parameter alpha must be a static Python value"):
        jax.jit(lambda a, b, s: xj.trsm(a, b, alpha=s))(a, b, 2.0)


# ---- vmap ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["potrf", "trsm", "syevd", "gemm", "gelqf", "slogdet", "maketrian"])
def test_vmap_equals_batched_call(name):
    rng = np.random.default_rng(5)
    params = {"lower": False} if name in ("potrf", "trsm") else {}
    arrays = tuple(jnp.asarray(x) for x in inputs(name, params, rng, batch=(3,), n=3))
    f = lambda *a: getattr(xj, name)(*a, **params)  # noqa: E731
    batched = as_tuple(f(*arrays))
    for a, b in zip(as_tuple(jax.vmap(f)(*arrays)), batched):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    # the batch axis last, and the outputs' batch axis last too
    moved = tuple(jnp.moveaxis(x, 0, -1) for x in arrays)
    out = as_tuple(jax.vmap(f, in_axes=-1, out_axes=-1)(*moved))
    for a, b in zip(out, batched):
        np.testing.assert_allclose(jnp.moveaxis(a, -1, 0), b, rtol=1e-12, atol=1e-12)


def test_vmap_with_unmapped_arguments_and_grad():
    rng = np.random.default_rng(6)
    a, b = (jnp.asarray(x) for x in inputs("trsm", {}, rng, n=4))
    bs = jnp.asarray(rng.standard_normal((5, 4, 2)))
    # A shared (in_axes=None), B mapped over its middle axis
    out = jax.vmap(lambda a, b: xj.trsm(a, b, alpha=0.5), in_axes=(None, 1), out_axes=1)(a, jnp.moveaxis(bs, 0, 1))
    np.testing.assert_allclose(jnp.moveaxis(out, 1, 0), xj.trsm(a, bs, alpha=0.5), rtol=1e-12)
    # per-example gradients with respect to the shared A equal gradients of each example
    loss = lambda a, b: jnp.sum(jnp.sin(xj.trsm(a, b)))  # noqa: E731
    per_example = jax.vmap(jax.grad(loss), in_axes=(None, 0))(a, bs)
    single = jax.jit(jax.grad(loss))
    for i in range(bs.shape[0]):
        np.testing.assert_allclose(per_example[i], single(a, bs[i]), rtol=1e-12, atol=1e-14)
    # grad of a vmapped loss == grad of the broadcast (batched) call; and under jit
    total = lambda a: jnp.sum(jax.vmap(loss, in_axes=(None, 0))(a, bs))  # noqa: E731
    np.testing.assert_allclose(jax.grad(total)(a), jax.grad(lambda a: loss(a, bs))(a), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(jax.jit(jax.grad(total))(a), jax.grad(total)(a), rtol=1e-12, atol=1e-14)
    # vmap of a second derivative
    s = jnp.asarray(spd(rng, (3, 3, 3)))
    hessian = jax.hessian(lambda x: xj.sumlogdiag(xj.potrf((x + x.T) / 2)))
    batched, single = jax.jit(jax.vmap(hessian))(s), jax.jit(hessian)
    for i in range(3):
        np.testing.assert_allclose(batched[i], single(s[i]), rtol=1e-10, atol=1e-12)


# ---- dtypes and devices -------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", OPS)
def test_dtype_and_device_preserved(name, dtype):
    rng = np.random.default_rng(7)
    arrays = tuple(jax.device_put(x, jax.devices("cpu")[0]) for x in inputs(name, {}, rng, n=3, dtype=dtype))
    outs, pullback = jax.vjp(lambda *a: as_tuple(getattr(xj, name)(*a)), *arrays)
    grads = pullback(tuple(jnp.ones_like(y) for y in outs))
    for y in (*outs, *grads):
        assert y.dtype == jnp.dtype(dtype)
        assert y.devices() == arrays[0].devices()
    for y in as_tuple(jax.jit(getattr(xj, name))(*arrays)):
        assert y.dtype == jnp.dtype(dtype)


@pytest.mark.parametrize("name", OPS)
def test_float32_with_x64_disabled(name):
    rng = np.random.default_rng(8)
    arrays64 = inputs(name, {}, rng, batch=(2,), n=3)
    expected = numpy_reference(name, arrays64, {})
    cts = weights(rng, expected)
    _, np_pullback = xlinalg.vjp(name, *arrays64)
    expected_grads = np_pullback(cts if len(cts) > 1 else cts[0])
    with jax.enable_x64(False):
        arrays = tuple(jnp.asarray(x.astype("float32")) for x in arrays64)
        f = lambda *a: as_tuple(getattr(xj, name)(*a))  # noqa: E731
        for fn in (f, jax.jit(f)):
            outs, pullback = jax.vjp(fn, *arrays)
            grads = pullback(tuple(jnp.asarray(c, dtype=jnp.float32) for c in cts))
            for y, e in zip(outs, expected):
                assert y.dtype == jnp.float32
                np.testing.assert_allclose(y, e, rtol=2e-5, atol=2e-5)
            for g, e in zip(grads, expected_grads):
                assert g.dtype == jnp.float32
                np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4)


# ---- errors -------------------------------------------------------------------------------------
def _bad_inputs():
    rng = np.random.default_rng(9)
    a = spd(rng, (4, 4))
    not_pd = np.stack([a, -a, a])
    singular = np.stack([a, np.ones((4, 4)), a])
    t = np.tril(a)
    zero_diag = np.stack([t, t, t])
    zero_diag[1, 0, 0] = 0.0
    b = rng.standard_normal((3, 4, 2))
    return [
        ("potrf", (np.ones(3),), {}),
        ("potrf", (np.ones((3, 2)),), {}),
        ("trsm", (t, np.ones((3, 2))), {}),
        ("gemm2", (np.ones((2, 3, 3)), np.ones((4, 3, 3))), {}),
        ("potrf", (np.eye(3, dtype=np.int32),), {}),
        ("potrf", (np.eye(3, dtype=np.float16),), {}),
        ("gemm2", (np.ones((3, 3), np.float32), np.ones((3, 3))), {}),
        ("potrf", (a,), {"upper": True}),
        ("potrf", (a,), {"lower": "yes"}),
        ("trsm", (t,), {}),
        ("gelqf", (np.ones((3, 2)),), {}),
        ("maketrian", (np.ones(4),), {}),
        ("extractdiag", (np.ones((3, 3)),), {"offset": 3}),
        ("potrf", (not_pd,), {}),
        ("potrf", (not_pd,), {"lower": False}),
        ("inverse", (singular,), {}),
        ("trsm", (zero_diag, b), {}),
        ("potri", (zero_diag,), {}),
        ("potrs", (zero_diag, b), {}),
    ]


BAD = _bad_inputs()


def _raised(fn):
    try:
        fn()
    except Exception as exc:
        return exc
    return None


@pytest.mark.parametrize("name, arrays, params", BAD, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(BAD)])
def test_errors_as_with_numpy(name, arrays, params):
    expected = _raised(lambda: getattr(xlinalg, name)(*arrays, **params))
    assert expected is not None
    jarrays = [jnp.asarray(x) for x in arrays]
    for fn in (getattr(xlinalg, name), getattr(xj, name)):
        got = _raised(lambda: fn(*jarrays, **params))
        assert str(got) == str(expected)
        if isinstance(expected, xlinalg.LinAlgError):
            # JAX has no error class of its own: plain xlinalg.LinAlgError (NumPy's is also a
            # numpy.linalg.LinAlgError)
            assert type(got) is xlinalg.LinAlgError, type(got)
            assert isinstance(expected, np.linalg.LinAlgError)
            assert got.index == expected.index == (1,)
            assert got.operator == name
        else:
            assert type(got) is type(expected), (got, expected)


def test_failure_raises_under_eager_differentiation():
    a = spd(np.random.default_rng(10), (4, 4))
    x = jnp.asarray(np.stack([a, -a]))
    loss = lambda x: jnp.sum(xj.potrf(x))  # noqa: E731
    for run in (lambda: jax.grad(loss)(x), lambda: jax.jvp(loss, (x,), (x,)), lambda: jax.vjp(loss, x)):
        with pytest.raises(xlinalg.LinAlgError, match=r"potrf: the matrix is not positive definite at batch index \(1,\)"):
            run()


@pytest.mark.parametrize("name", ["potrs", "trsm"])
def test_non_finite_input_raises_under_eager_differentiation(name):
    """Eager ``grad``, ``jvp`` and ``vjp`` raise for a failing entry, also where the forward
    keeps residuals for the reverse (potrs, through the compiled layer) and where it does not."""
    bad, _ = _nan_batch(name)
    fn = getattr(xj, name)
    loss = lambda *xs: jnp.sum(fn(*xs))  # noqa: E731
    runs = (lambda: jax.grad(loss, (0, 1))(*bad), lambda: jax.jvp(loss, bad, bad), lambda: jax.vjp(loss, *bad))
    for run in runs:
        with pytest.raises(xlinalg.LinAlgError, match=rf"^{name}: input contains NaN or inf at batch index \(1,\)"):
            run()


def test_mixed_libraries_rejected():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="gemm2: arrays of different libraries"):
        xj.gemm2(jnp.ones((2, 2)), torch.ones((2, 2), dtype=torch.float64))


def test_other_library_arrays_name_what_jax_functions_take():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"^potrf: expected JAX arrays \(or NumPy arrays\), got torch\.Tensor for A$"):
        xj.potrf(torch.eye(3, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"^trsm: expected JAX arrays \(or NumPy arrays\), got torch\.Tensor for A, torch\.Tensor for B$"):
        xj.trsm(torch.eye(3), torch.ones(3, 2))
    with pytest.raises(TypeError, match="potrf: argument A must be an array, got list"):
        xj.potrf([[1.0, 0.0], [0.0, 1.0]])


def _nan_batch(name):
    """``(bad, clean)``: NumPy batches of 3 where entry 1 of ``bad`` holds a NaN in the lower
    triangle (the part the operator reads) of its first argument."""
    rng = np.random.default_rng(12)
    a = spd(rng, (3, 4, 4))
    clean = {
        "potrf": (a,),
        "inverse": (a,),
        "potri": (np.linalg.cholesky(a),),
        "potrs": (np.linalg.cholesky(a), rng.standard_normal((3, 4, 2))),
        "trsm": (np.linalg.cholesky(a), rng.standard_normal((3, 4, 2))),
    }[name]
    bad = [x.copy() for x in clean]
    bad[0][1, 2, 1] = np.nan
    return tuple(map(jnp.asarray, bad)), tuple(map(jnp.asarray, clean))


@pytest.mark.parametrize("name", ["potrf", "potri", "potrs", "trsm", "inverse"])
def test_non_finite_input_policy(name):
    """Eagerly a NaN in the read triangle raises naming batch index 1; under jit and vmap that
    entry's outputs are NaN in every element (a factor's zero triangle too), the others exact."""
    bad, clean = _nan_batch(name)
    fn = getattr(xj, name)
    with pytest.raises(xlinalg.LinAlgError, match=rf"^{name}: input contains NaN or inf at batch index \(1,\)") as info:
        fn(*bad)
    assert info.value.index == (1,) and type(info.value) is xlinalg.LinAlgError
    want = np.asarray(fn(*clean))
    for run in (jax.jit(fn), jax.vmap(fn)):
        out = np.asarray(run(*bad))
        assert np.isnan(out[1]).all(), out[1]
        np.testing.assert_allclose(out[[0, 2]], want[[0, 2]], rtol=1e-12, atol=1e-13)


def test_non_finite_input_of_operator_without_failure_is_ieee():
    a = np.stack([np.eye(3)] * 2)
    a[1, 0, 0] = np.nan
    out = np.asarray(xj.gemm2(jnp.asarray(a), jnp.asarray(a)))
    assert np.isnan(out[1]).any() and np.isfinite(out[0]).all()


@pytest.mark.parametrize("name", ["potrf", "inverse", "trsm", "potrs"])
def test_failures_under_jit_and_vmap_are_nan_per_entry(name):
    rng = np.random.default_rng(11)
    a = spd(rng, (4, 4))
    good = inputs(name, {}, rng, batch=(3,), n=4)
    bad = [x.copy() for x in good]
    if name == "potrf":
        bad[0][1] = -a
    elif name == "inverse":
        bad[0][1] = np.ones((4, 4))
    else:  # a zero on the factor's diagonal
        bad[0][1, 2, 2] = 0.0
    fn = getattr(xj, name)
    expected = fn(*map(jnp.asarray, good))
    for run in (jax.jit(fn), jax.vmap(fn)):
        out = run(*map(jnp.asarray, bad))
        assert bool(jnp.all(jnp.isnan(out[1])))  # every element, a factor's zero triangle too
        np.testing.assert_allclose(out[jnp.array([0, 2])], expected[jnp.array([0, 2])], rtol=1e-12)
    grads = jax.jit(jax.grad(lambda x: jnp.sum(fn(x, *map(jnp.asarray, bad[1:])))))(jnp.asarray(bad[0]))
    assert bool(jnp.all(jnp.isfinite(grads[jnp.array([0, 2])])))
