"""The extension's own checks (``xlinalg.lapack._kernels``): whatever Python hands an entry, it
raises instead of reading or writing out of bounds, and it never writes its inputs.

The valid calls are recorded from the compiled rules (:mod:`xlinalg.lapack.rules`) of every
operator. Each array of each recorded call is then spoiled in turn — one matrix too many, the
other dtype, None, not C-contiguous, and for outputs one column too few or read-only — as is
the arity, and the entry must raise (naming itself) before it writes anything.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.mappings import mapping_flags
from xlinalg import lapack
from xlinalg.core import apply, operators, samples
from xlinalg.lapack import rules

pytestmark = pytest.mark.skipif(lapack.library() is None, reason="compiled kernel layer not active")

#: arrays an entry takes as None (gemm2 has no c, so its reverse no gc)
OPTIONAL = {"gemm": {2}, "gemm_vjp": {5}}


class _Recorder:
    """The library, recording ``(entry, args)`` of every call."""

    def __init__(self, lib):
        self.lib, self.calls = lib, []

    def __getattr__(self, name):
        def entry(*args):
            self.calls.append((name, tuple(np.copy(x) if isinstance(x, np.ndarray) else x for x in args)))
            return getattr(self.lib, name)(*args)

        return entry


def _recorded_calls() -> list:
    """One call of every entry per argument count and dtype, made by the compiled rules (and
    those that keep residuals) on a batch of two matrices of order 3."""
    lib = lapack.library()
    if lib is None:
        return []
    recorder = _Recorder(lib)
    original = rules.library
    rules.library = lambda: recorder
    try:
        for name in rules.RULES:
            op = operators()[name]
            for dtype in ("float64", "float32"):
                arrays, params = samples.example(op, np.random.default_rng(0), batch=(2,), n=3, dtype=dtype)
                call = apply.prepare(op, list(arrays), params)
                outputs, _ = call.kern.compiled(op, "forward", call.inputs)(call.inputs, params=call.params)
                cotangents = tuple(np.ones_like(y) for y in outputs)
                call.kern.compiled(op, "vjp", call.inputs)(call.inputs, tuple(outputs), cotangents, params=call.params)
                saving = call.kern.compiled_saving(op, "forward", call.inputs)
                if saving is not None:  # the entries that keep residuals (det_lu, det_vjp_lu, ...)
                    outputs, _, residuals = saving(call.inputs, params=call.params)
                    reverse = call.kern.compiled_saving(op, "vjp", call.inputs)
                    reverse(residuals, call.inputs, tuple(outputs), cotangents, params=call.params)
    finally:
        rules.library = original
    calls = {}
    for name, args in recorder.calls:
        calls.setdefault((_label(name, args)), (name, args))
    return list(calls.values())


def _label(name, args) -> str:
    """``potrf-float64``, ``gemm-without-2-float32`` (array 2 None), ..."""
    absent = [str(i) for i, x in enumerate(args) if x is None]
    return "-".join([name, *(["without", *absent] if absent else []), str(args[0].dtype)])


CALLS = _recorded_calls()
IDS = [_label(name, args) for name, args in CALLS]


def _copy(args) -> list:
    return [np.copy(x) if isinstance(x, np.ndarray) else x for x in args]


def _run(name, args):
    return getattr(lapack.library(), name)(*args)


def _outputs(name, args) -> list:
    """Positions of the arrays the entry writes: those it refuses to take read-only."""
    outputs = []
    for i, x in enumerate(args):
        if isinstance(x, np.ndarray):
            probe = _copy(args)
            probe[i].setflags(write=False)
            try:
                _run(name, probe)
            except TypeError as exc:
                assert "writable" in str(exc), exc
                outputs.append(i)
    return outputs


def test_every_entry_is_covered():
    entries = {n for n in dir(lapack.library()) if not n.startswith("_")} - {"set_routine", "ready", "isa"}
    assert {name for name, _ in CALLS} == entries


@pytest.mark.parametrize("name,args", CALLS, ids=IDS)
def test_inputs_are_never_written(name, args):
    """Every array a call changes is one the entry refuses read-only (an output)."""
    outputs = _outputs(name, args)
    assert outputs, f"{name} writes nothing"
    after = _copy(args)
    _run(name, after)
    for i, (x, y) in enumerate(zip(args, after)):
        if isinstance(x, np.ndarray) and i not in outputs:
            assert np.array_equal(x, y, equal_nan=True), f"{name} wrote its input {i}"


def _spoiled(args, outputs, optional):
    """``(what, args)`` for every spoiled version of the call."""
    for i, x in enumerate(args):
        if not isinstance(x, np.ndarray):
            continue
        yield f"array {i} with one matrix more", [*args[:i], np.concatenate([x, x[:1]]), *args[i + 1:]]
        other = np.int64 if x.dtype == np.int32 else np.float32 if x.dtype == np.float64 else np.float64
        with np.errstate(over="ignore"):  # huge garbage in an unread triangle
            cast = x.astype(other)
        yield f"array {i} as {np.dtype(other).name}", [*args[:i], cast, *args[i + 1:]]
        strided = np.repeat(x, 2, axis=-1)[..., ::2] if x.ndim else x
        yield f"array {i} not contiguous", [*args[:i], strided, *args[i + 1:]]
        if i not in optional:
            yield f"array {i} None", [*args[:i], None, *args[i + 1:]]
        if i in outputs:
            if x.ndim >= 2 and x.shape[-1] > 1:
                yield f"output {i} one column short", [*args[:i], np.copy(x[..., :-1]), *args[i + 1:]]
            read_only = np.copy(x)
            read_only.setflags(write=False)
            yield f"output {i} read-only", [*args[:i], read_only, *args[i + 1:]]
    yield "one argument too few", list(args[:-1])
    yield "one argument too many", [*args, 0]


@pytest.mark.parametrize("name,args", CALLS, ids=IDS)
def test_a_spoiled_call_raises_before_writing(name, args):
    outputs = _outputs(name, args)
    for what, spoiled in _spoiled(_copy(args), outputs, OPTIONAL.get(name, set())):
        before = _copy(spoiled)
        with pytest.raises((TypeError, ValueError), match=rf"^{name}: ") as info:
            _run(name, spoiled)
        for i, (x, y) in enumerate(zip(before, spoiled)):
            if isinstance(x, np.ndarray):
                assert np.array_equal(x, y, equal_nan=True), f"{name}, {what}: array {i} written before: {info.value}"
    _run(name, _copy(args))  # the call itself is valid


def _fresh_mapping(shape) -> np.ndarray:
    """A float64 array on an anonymous private mapping of its own, no page of it touched (NumPy's
    allocator asks for huge pages for large arrays itself)."""
    import mmap

    buffer = mmap.mmap(-1, 8 * int(np.prod(shape)), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return np.frombuffer(buffer, dtype=np.float64).reshape(shape)


@pytest.mark.skipif(not os.path.exists("/sys/kernel/mm/transparent_hugepage/enabled"), reason="no transparent huge pages")
def test_large_fresh_outputs_ask_for_huge_pages():
    """An entry asks for transparent huge pages for the whole 2 MiB pages of a large output that
    nothing has written yet (src/pages.hpp: a fresh 32 MiB gradient fills several times faster);
    the advice shows as ``hg`` among the flags of its mapping. An output already written (memory
    an allocator hands out again) is left alone."""
    n = 2048
    a, g = np.full((1, n, n), 2.0), np.ones(1)
    for written in (False, True):
        out = _fresh_mapping((1, n, n))
        if written:
            out.fill(1.0)
        lapack.library().sumlogdiag_vjp(a, g, out)
        np.testing.assert_array_equal(out[0], np.eye(n) / 2)
        assert ("hg" in mapping_flags(out.ctypes.data + out.nbytes // 2)) is not written
