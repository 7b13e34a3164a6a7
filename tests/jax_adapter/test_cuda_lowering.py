"""JAX on CUDA through XLA FFI (:mod:`xlinalg.cuda.jax_ffi`), checked without a GPU.

A CPU-only jaxlib takes CUDA custom-call targets and lowers programs for the CUDA platform
(``lowering_platforms=("cuda",)``), so the choice of rules per platform is visible in the
StableHLO text: every operator of the GPU rules, forward, ``grad``, ``vmap`` and ``jvp``, lowers
to the shared FFI targets on CUDA as on the CPU, and to the composed rules above the GPU
entries' largest order. The generated handlers' checks run on the CPU through their check-only
variants, called by the same ``ffi_call`` as the CPU entries. Skipped where the CUDA library or
the CPU FFI library is not built."""

from __future__ import annotations

import ctypes
import re
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
import xlinalg.kernels.jax as jax_kernels
from tests.jax_adapter.jax_cases import inputs
from xlinalg import cuda
from xlinalg.adapters import jax as adapter
from xlinalg.core import apply, operators
from xlinalg.cuda import entries as cuda_entries
from xlinalg.cuda import jax_ffi as cuda_ffi
from xlinalg.cuda.rules import MAX_ORDER, RULES
from xlinalg.lapack import jax_ffi

if cuda.library() is None:
    pytest.skip(f"the CUDA library is not built: {cuda.unavailable_reason()}", allow_module_level=True)
if jax_ffi.library() is None:
    pytest.skip(f"the JAX FFI kernels are not available: {jax_ffi.reason()}", allow_module_level=True)

NAMES = sorted(RULES)
DTYPES = {"float64": "f64", "float32": "f32"}


def _params(name) -> dict:
    """One parameter combination per operator: the last of its grid (every flag flipped from
    the defaults, for trsm/trmm ``rightside`` with B not square)."""
    return operators()[name].param_grid()[-1]


def _fn(name, params):
    return lambda *a: getattr(xlinalg.jax, name)(*a, **params)


def _loss(name, params):
    fn = _fn(name, params)
    return lambda *a: sum(jnp.sum(jnp.sin(y)) for y in jax.tree.leaves(fn(*a)))


def _arrays(name, params, n, dtype="float64", batch=(2,)):
    rng = np.random.default_rng(n)
    return tuple(jnp.asarray(x.astype(dtype)) for x in inputs(name, params, rng, batch=batch, n=n))


def _calls(fn, *args, platform="cuda") -> set:
    """The custom-call targets of ``jax.jit(fn)`` lowered for ``platform``."""
    text = jax.jit(fn).trace(*args).lower(lowering_platforms=(platform,)).as_text()
    return set(re.findall(r"custom_call @(\w+)", text))


def _targets(name, dtype, saving=False):
    """The forward and VJP targets of ``name`` (``saving``: of the variant that keeps residuals,
    where there is one: reverse mode on the CPU runs it)."""
    spec = jax_ffi.SAVING[name] if saving and name in jax_ffi.SAVING else jax_ffi.TABLE[name]
    return spec.target("forward", dtype), spec.target("vjp", dtype)


# ---- the library ------------------------------------------------------------------------------
def _registered_for_cuda() -> set | None:
    """The CUDA targets JAX holds (pending until a CUDA plugin takes them, or taken); ``None``
    where this JAX does not tell."""
    try:
        from jax._src.lib import xla_client
    except ImportError:  # pragma: no cover
        return None
    names = set()
    pending = getattr(xla_client, "_custom_callback", None)
    if isinstance(pending, dict):
        names |= {entry[0] for key, entries in pending.items() if str(key).upper() == "CUDA" for entry in entries}
    try:
        names |= set(xla_client.custom_call_targets("CUDA"))
    except Exception:
        pass
    return names if names or isinstance(pending, dict) else None


def test_the_handlers_are_built_and_registered_for_cuda():
    """The generated source compiled (``library()`` loaded) and every target of the CPU table's
    GPU operators, forward and VJP, both dtypes, is defined and registered for CUDA."""
    assert cuda_ffi.library() is not None, cuda_ffi.reason()
    want = {t for name in RULES for dtype in DTYPES for t in _targets(name, dtype)}
    assert set(cuda_ffi.targets()) == want and len(cuda_ffi.targets()) == len(want)
    lib = cuda_ffi.library()
    for target in want:
        assert hasattr(lib, target) and hasattr(lib, cuda_ffi.check_symbol(target)), target
    registered = _registered_for_cuda()
    if registered is None:
        pytest.skip("this JAX does not tell which CUDA targets it holds")
    assert want <= registered, sorted(want - registered)


def test_the_generator_follows_entries_def():
    """The handlers' operands and results are the ``const T*`` and ``T*``/``int32_t*``
    parameters of ``entries.def``; an entry that differs from the CPU handler is refused."""
    table = cuda_entries.entries()
    for h in cuda_ffi.handlers():
        params = table[h.entry.name].params
        assert [b.name for b in h.operands] == [p.name for p in params if p.type == "const T*"]
        assert [b.name for b in h.results] == [p.name for p in params if p.pointer and p.type != "const T*"]
    text = cuda_entries.DEF_FILE.read_text().replace("T* out, int32_t* status), (lower, n, a, out, status)", "T* out), (lower, n, a, out)")
    broken = cuda_entries.parse(text)
    assert "status" not in [p.name for p in broken["potrf"].params]
    original = cuda_ffi.entries
    try:
        cuda_ffi.entries = lambda: broken
        with pytest.raises(ValueError, match="potrf"):
            cuda_ffi.handlers.__wrapped__()
    finally:
        cuda_ffi.entries = original


def test_the_handlers_choose_the_staged_entries_as_the_other_bindings(monkeypatch):
    """``XLINALG_CUDA_LAYOUT=staged``, read at each call: a batch of more than one entry whose
    group area (stage · 33 · itemsize bytes) fits in 96 KiB and in the device's shared memory per
    block runs the staged entry with that stage; anything else (unset: packed; interleaved) the
    packed one. Each handler calls both."""
    lib = cuda_ffi.library()
    stage = lib.xl_cuda_ffi_stage
    stage.argtypes, stage.restype = [ctypes.c_int64, ctypes.c_int64, ctypes.c_int], ctypes.c_int
    limit = [98304]

    @ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int))
    def shared_limit(out):
        out[0] = limit[0]
        return 0

    set_ = lib.xl_cuda_ffi_set
    real = ctypes.cast(cuda.library().xl_cuda_shared_limit, ctypes.c_void_p).value
    assert set_(b"xl_cuda_shared_limit", ctypes.cast(shared_limit, ctypes.c_void_p).value) == 0
    try:
        monkeypatch.delenv("XLINALG_CUDA_LAYOUT", raising=False)
        assert stage(40, 129, 4) == 0  # potrf, order 8, float32: packed by default
        for layout in ("packed", "interleaved"):
            monkeypatch.setenv("XLINALG_CUDA_LAYOUT", layout)
            assert stage(40, 129, 4) == 0
        monkeypatch.setenv("XLINALG_CUDA_LAYOUT", "staged")
        assert stage(40, 129, 4) == 129 and stage(2, 129, 8) == 129 and stage(1, 129, 4) == 0
        assert stage(40, 744, 4) == 744 and stage(40, 745, 4) == 0  # 744 · 33 · 4 ≤ 98 304 < 745 · 33 · 4
        limit[0] = 65536
        assert stage(40, 496, 4) == 496 and stage(40, 497, 4) == 0  # sm_75: 64 KiB
    finally:
        assert set_(b"xl_cuda_shared_limit", real) == 0
    text = cuda_ffi.source()
    for h in cuda_ffi.handlers():
        assert f'launched(e, "{h.staged_symbol}"' in text and f'launched(e, "{h.symbol}"' in text, h.target
    assert {h.staged_symbol for h in cuda_ffi.handlers()} <= set(cuda_ffi.symbols())


# ---- the handlers' checks, through the shared ffi_call ---------------------------------------
@pytest.fixture(scope="module")
def checks():
    """The check-only handlers registered as CPU targets, and ``jax.ffi.ffi_call`` for the
    duration of a test redirected from each GPU target to its check-only handler."""
    lib = cuda_ffi.library()
    for target in cuda_ffi.targets():
        name = cuda_ffi.check_symbol(target)
        jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, name)), platform="cpu")
    return set(cuda_ffi.targets())


@pytest.fixture
def redirected(checks, monkeypatch):
    real = jax.ffi.ffi_call

    def ffi_call(target, *args, **kwargs):
        return real(cuda_ffi.check_symbol(target) if target in checks else target, *args, **kwargs)

    monkeypatch.setattr(jax.ffi, "ffi_call", ffi_call)


@pytest.mark.parametrize("name", NAMES)
def test_the_handlers_take_the_shared_call(name, redirected):
    """The forward and VJP calls of :mod:`xlinalg.lapack.jax_ffi` (its operands, results and
    attributes) pass the CUDA handlers' decoding and checks, both dtypes; one square order
    above the GPU entries' largest is refused naming the operator."""
    op, params = operators()[name], _params(name)
    for dtype in DTYPES:
        xs = _arrays(name, params, 4, dtype)
        call = apply.prepare(op, xs, params, xp=jnp)
        outputs, status = jax_ffi.forward(op, call.params, call.inputs)
        assert [y.shape for y in outputs] == [y.shape for y in apply.forward(replace(call, kern=jax_kernels.JaxKernels(jnp)))]
        assert (status is None) == (not jax_ffi.TABLE[name].status)
        cotangents = tuple(jnp.ones_like(y) for y in outputs)
        grads = jax_ffi.vjp(op, call.params, call.inputs, outputs, cotangents)
        assert [g.shape for g in grads] == [x.shape for x in call.inputs]
    big = apply.prepare(op, _arrays(name, params, MAX_ORDER + 1, batch=()), params, xp=jnp)
    with pytest.raises(Exception, match=rf"xlinalg {name} \(CUDA\): the square order n = {MAX_ORDER + 1} is above"):
        jax_ffi.forward(op, big.params, big.inputs)


def test_the_handlers_refuse_mismatched_buffers(checks):
    """Shapes that disagree with the entry's named dimensions, another batch or dtype: an error
    naming the entry and the buffer, never a launch."""
    f = jnp.eye(3)
    results = lambda *shapes: [jax.ShapeDtypeStruct(s, jnp.float64) for s in shapes]  # noqa: E731
    attrs = {"lower": np.int32(1), "threads": np.int32(1)}
    call = lambda target, res, *args: jax.ffi.ffi_call(cuda_ffi.check_symbol(target), res)(*args, **attrs)  # noqa: E731
    status = jax.ShapeDtypeStruct((), np.int32)
    with pytest.raises(Exception, match=r"xlinalg potrs \(CUDA\): b: its dimension n is 4, elsewhere 3"):
        call("xl_ffi_potrs_f64", [*results((4, 2)), status], f, jnp.ones((4, 2)))
    with pytest.raises(Exception, match=r"xlinalg potrs \(CUDA\): out: its dimension k is 5, elsewhere 2"):
        call("xl_ffi_potrs_f64", [*results((3, 5)), status], f, jnp.ones((3, 2)))
    with pytest.raises(Exception, match=r"xlinalg potrf_vjp \(CUDA\): g has other batch axes"):
        call("xl_ffi_potrf_vjp_f64", results((2, 3, 3)), jnp.ones((2, 3, 3)), jnp.ones((3, 3, 3)))
    with pytest.raises(Exception, match=r"xlinalg potrf \(CUDA\): a has the wrong dtype"):
        call("xl_ffi_potrf_f64", [*results((3, 3)), status], f.astype(jnp.float32))


# ---- lowering ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_lowering_for_cuda_runs_the_shared_targets(name):
    """For CUDA: the forward, ``grad``, ``vmap`` of ``grad`` and ``jvp`` lower to the forward
    (and for reverse mode the VJP) target, float64 and float32; one order above the GPU entries'
    largest lowers to the composed rules. For the CPU the same programs keep the CPU targets."""
    params = _params(name)
    fn, loss = _fn(name, params), _loss(name, params)
    argnums = tuple(range(len(operators()[name].args)))
    grad = jax.grad(loss, argnums)
    for dtype, suffix in DTYPES.items():
        fwd, vjp = _targets(name, dtype)
        xs = _arrays(name, params, 4, dtype)
        assert {fwd, vjp} <= _calls(grad, *xs), (name, dtype)
        if suffix == "f32":
            continue
        calls = _calls(fn, *xs)
        assert fwd in calls and vjp not in calls
        assert {fwd, vjp} <= _calls(jax.vmap(grad), *xs)
        calls = _calls(lambda xs, ts: jax.jvp(loss, xs, ts), xs, tuple(jnp.ones_like(x) for x in xs))
        assert fwd in calls and vjp not in calls
        cpu = set(_targets(name, dtype, saving=True))
        assert cpu <= _calls(grad, *xs, platform="cpu")
        big = _arrays(name, params, MAX_ORDER + 1, batch=())
        assert not any(c.startswith("xl_ffi") for c in _calls(grad, *big)), name
        assert cpu <= _calls(grad, *big, platform="cpu")


def _refuse(index):
    if index:
        raise RuntimeError(f"cudaSetDevice({index}) failed")
    return True


def _gpus(monkeypatch, driver, count=0, runs_on=None):
    """This process as if the driver reported version ``driver`` (0: none) and JAX used GPUs 0
    and 1, of which the library found ``count`` usable (0: none, its runtime too new for the
    driver), with its code on those where ``runs_on(index)``; the handlers' decision undone."""
    from xlinalg.cuda import rules

    def version(out):
        out._obj.value = driver
        return 0

    monkeypatch.setattr(cuda.library(), "xl_cuda_driver_version", version)
    monkeypatch.setattr(cuda_ffi, "_state", {k: v for k, v in cuda_ffi._state.items() if k != "gpus"})
    monkeypatch.setattr(cuda_ffi, "_jax_gpus", lambda: [0, 1])
    if count:
        monkeypatch.setattr(rules, "library_entries", lambda: rules.CudaEntries(cuda.library()))
        monkeypatch.setattr(rules.CudaEntries, "runs_on", lambda self, index: runs_on(index))
        monkeypatch.setattr(rules.CudaEntries, "missing_code", lambda self: {1: "cudaErrorNoKernelImageForDevice (...)"})
    else:
        monkeypatch.setattr(rules, "library_entries", lambda: None)
        monkeypatch.setattr(cuda, "device_status", lambda: "cudaErrorInsufficientDriver")


@pytest.mark.parametrize(
    "driver, count, runs_on, why",
    [
        (0, 0, None, "loaded"),  # no driver: programs are only lowered here
        (12080, 0, None, "finds no usable device (cudaErrorInsufficientDriver)"),  # a driver older than the runtime
        (13000, 2, lambda index: index == 0, "has no code for device(s) {1: 'cudaErrorNoKernelImageForDevice"),
        (13000, 2, lambda index: True, "loaded"),
        (13000, 2, lambda index: _refuse(index), "code cannot be checked on JAX's GPUs (cudaSetDevice(1) failed"),
    ],
)
def test_the_handlers_stand_down_where_the_library_cannot_run(monkeypatch, driver, count, runs_on, why):
    """Where the CUDA library cannot run on this machine's GPUs, programs lowered for CUDA run the
    composed rules (on JAX's own GPU kernels) instead of handlers whose every launch would fail;
    ``XLINALG_KERNELS=compiled`` says why."""
    from xlinalg import lapack

    monkeypatch.setitem(lapack._state, "mode", "auto")
    _gpus(monkeypatch, driver, count, runs_on)
    assert cuda_ffi.gpus_reason().startswith(why) or why in cuda_ffi.gpus_reason(), cuda_ffi.gpus_reason()
    params = _params("potrf")
    xs = _arrays("potrf", params, 4)
    fwd, _ = _targets("potrf", "float64")
    assert (fwd in _calls(_fn("potrf", params), *xs)) == (why == "loaded")
    if why != "loaded":
        monkeypatch.setitem(lapack._state, "mode", "compiled")
        with pytest.raises(ImportError, match="XLINALG_KERNELS=compiled, but the JAX CUDA handlers are not available: the CUDA library"):
            cuda_ffi.supports(operators()["potrf"], [x.shape for x in xs])


@pytest.mark.parametrize("name", ["potrf", "trsm"])
def test_second_order_lowers_for_cuda(name):
    """``hessian`` and ``grad`` of ``grad`` lower for CUDA: the forward target runs, the
    derivatives of the VJP are the composed rules'."""
    params = _params(name)
    loss = _loss(name, params)
    xs = _arrays(name, params, 3)
    fwd, _ = _targets(name, "float64")
    assert fwd in _calls(jax.hessian(loss), *xs)
    twice = jax.grad(lambda *a: jnp.sum(jnp.sin(jax.tree.leaves(jax.grad(loss, 0)(*a))[0])))
    assert fwd in _calls(twice, *xs)


def test_lowering_for_both_platforms():
    """One program lowered for the CPU and CUDA together holds the targets once per platform
    branch: the shared ones for CUDA, the variant that keeps residuals for the CPU."""
    xs = _arrays("potrs", _params("potrs"), 4)
    calls = jax.jit(jax.grad(_loss("potrs", _params("potrs")), (0, 1))).trace(*xs).lower(lowering_platforms=("cpu", "cuda")).as_text()
    for saving in (False, True):
        fwd, vjp = _targets("potrs", "float64", saving)
        assert calls.count(f"custom_call @{fwd}(") == 1 and calls.count(f"custom_call @{vjp}(") == 1, saving


# ---- eager calls on a device ------------------------------------------------------------------
def test_eager_device_arrays_take_the_jitted_route(monkeypatch):
    """Concrete arrays on a device other than the CPU (here: CPU arrays reported as such) run
    jitted calls of the primitives, never the host route, with the same values, gradients and
    failures as the host route."""
    rng = np.random.default_rng(5)
    a = jnp.asarray(inputs("potrf", {}, rng, batch=(3,), n=4)[0])
    loss = _loss("potrf", {})
    host = (xlinalg.jax.potrf(a), jax.grad(loss)(a))
    bad = a.at[1].set(-jnp.eye(4))
    with pytest.raises(xlinalg.LinAlgError) as want:
        xlinalg.jax.potrf(bad)

    def refuse(*args, **kwargs):
        raise AssertionError("the host route ran")

    real = jax_kernels.placement
    monkeypatch.setattr(adapter, "placement", lambda arrays: "device" if real(arrays) == "cpu" else real(arrays))
    monkeypatch.setattr(jax_kernels, "host_runner", refuse)
    device = (xlinalg.jax.potrf(a), jax.grad(loss)(a))
    for x, y in zip(device, host):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-12, atol=1e-12)
    with pytest.raises(xlinalg.LinAlgError) as got:
        xlinalg.jax.potrf(bad)
    assert str(got.value) == str(want.value) and got.value.index == (1,)
    monkeypatch.setattr(jax_kernels, "placement", lambda arrays: "device")
    assert jax_kernels.ffi_kernels().compiled(operators()["potrf"], "forward", (a,)) is None
