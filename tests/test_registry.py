"""The operator registry: one entry per operator describes it completely, and a new operator
written only in ``xlinalg/core/`` is exposed and tested in every framework.

``test_new_operator_is_covered_everywhere`` adds an operator module to a copy of the project
and runs the project's own generic tests and the conformance suite for it, in whichever of
NumPy, PyTorch, JAX and MXNet this environment has (the MXNet environment runs this file too).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import xlinalg
from xlinalg.core import operators
from xlinalg.core.samples import draw
from xlinalg.core.shapes import ShapeError, output_shapes

ROOT = Path(__file__).resolve().parents[1]

#: A symmetric solve through the eigendecomposition: rules, signature and testing entry only.
NEW_OPERATOR = '''
"""syevsolve: X = A⁻¹ B for symmetric positive definite A, through A = V diag(λ) Vᵀ."""

from .matrix import mT
from .operator import Arg, Operator, Output, register


def _solve(xp, kern, a, b):
    w, v = kern.eigh(a)
    return xp.matmul(v, xp.matmul(mT(xp, v), b) / w[..., :, None])


def _forward(xp, kern, a, b):
    return (_solve(xp, kern, a, b),)


def _jvp(xp, kern, inputs, outputs, tangents):
    (a, b), (x,), (da, db) = inputs, outputs, tangents
    return (_solve(xp, kern, a, db - xp.matmul(da, x)),)


def _vjp(xp, kern, inputs, outputs, cotangents):
    (a, b), (x,), (g,) = inputs, outputs, cotangents
    gb = _solve(xp, kern, a, g)
    return -xp.matmul(gb, mT(xp, x)), gb


def _reference(a, b):
    import numpy as np

    s = np.tril(a) + np.tril(a, -1).T
    return (np.linalg.solve(s, b),)


register(Operator(
    name="syevsolve",
    args=(Arg("A", dims=("n", "n"), structure="symmetric", domain="spd"), Arg("B", dims=("n", "k"))),
    outputs=(Output("X", dims=("n", "k")),),
    forward=_forward, jvp=_jvp, vjp=_vjp,
    summary="Solve ``A X = B`` for symmetric positive definite ``A`` by its eigendecomposition.",
    math="Forward: X = V diag(1/λ) Vᵀ B.  JVP: dX = A⁻¹ (dB − dA X).  VJP: B̄ = A⁻¹ Ḡ, Ā = −sym(B̄ Xᵀ).",
    reference=_reference,
))
'''


def _available(name):
    return importlib.util.find_spec(name) is not None


def _copy_project(tmp_path) -> Path:
    """The project's package, suite, tests and docs script in ``tmp_path``, plus the new module."""
    dest = tmp_path / "project"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    for part in ("xlinalg", "conformance", "tests", "docs"):
        shutil.copytree(ROOT / part, dest / part, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    (dest / "xlinalg" / "core" / "syevsolve.py").write_text(textwrap.dedent(NEW_OPERATOR), encoding="utf-8")
    return dest


def test_new_operator_is_covered_everywhere(tmp_path):
    project = _copy_project(tmp_path)
    # the copy's xlinalg first on the path; the suite imported under its installed name
    # resolves to the copy as well through a package alias set up by the script below
    script = textwrap.dedent(
        """
        import importlib, sys
        sys.path.insert(0, ".")
        import conformance
        sys.modules["xlinalg_conformance"] = conformance
        import xlinalg
        assert xlinalg.__file__.startswith(sys.argv[1]), xlinalg.__file__
        assert "syevsolve" in xlinalg.OPERATORS and "syevsolve" in xlinalg.__all__
        print("numpy namespace ok")
        for module in sys.argv[2:]:
            ns = importlib.import_module(module)
            assert "syevsolve" in ns.__all__, module
            print(module, "namespace ok")
        """
    )
    frameworks = [m for m, lib in (("xlinalg.torch", "torch"), ("xlinalg.jax", "jax"), ("xlinalg.mxnet", "mxnet")) if _available(lib)]
    proc = subprocess.run([sys.executable, "-c", script, str(project), *frameworks], cwd=project,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # the project's generic tests, selected for the new operator only
    targets = ["tests/test_conventions.py", "tests/test_conformance.py"]
    if _available("torch"):
        targets += ["tests/torch_adapter/test_autograd.py", "tests/torch_adapter/test_conformance_torch.py"]
    if _available("jax"):
        targets += ["tests/jax_adapter/test_grads.py", "tests/jax_adapter/test_contract.py"]
    if _available("mxnet"):
        targets += ["tests/mxnet_adapter/test_autograd.py", "tests/mxnet_adapter/test_symbolic.py",
                    "tests/mxnet_adapter/test_conformance.py"]
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "syevsolve", *targets]
    env_script = "import sys, conformance; sys.modules['xlinalg_conformance'] = conformance\n"
    (project / "conftest.py").write_text(env_script, encoding="utf-8")
    proc = subprocess.run(cmd, cwd=project, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    summary = out.strip().splitlines()[-1]
    passed = int(summary.split(" passed")[0].split()[-1]) if " passed" in summary else 0
    assert passed >= 10, summary  # the new operator was really collected and checked


# ---- the registry entries themselves -----------------------------------------------------------
@pytest.mark.parametrize("name", xlinalg.OPERATORS)
def test_entry_is_complete(name):
    op = operators()[name]
    assert op.summary and op.math and op.reference is not None
    assert op.failure is None or op.breaks is not None, "an operator that can fail needs breaks"
    for p in op.param_grid():
        assert set(p) == set(op.params)


@pytest.mark.parametrize("name", xlinalg.OPERATORS)
def test_shape_rule_matches_the_rules(name):
    """The output shapes the spec promises (used by validation, MXNet and the conformance
    references) are the shapes the forward rule returns, for every grid combination."""
    op = operators()[name]
    rng = np.random.default_rng(1)
    for params in op.param_grid():
        for n in (0, 1, 3):
            drawn = draw(op, rng, [(2,)], n, params)
            if drawn is None:
                continue
            arrays = drawn[0]
            want = output_shapes(op, [x.shape[1:] for x in arrays], params)
            got = getattr(xlinalg, name)(*arrays, **params)
            got = got if isinstance(got, tuple) else (got,)
            assert [y.shape[1:] for y in got] == list(want), (params, n)


def test_shape_rule_messages_name_the_axes():
    op = operators()["gemm"]
    with pytest.raises(ShapeError, match=r"the rows of B \(5\) must match the columns of A \(4\)"):
        output_shapes(op, [(3, 4), (5, 2), (3, 2)], op.params)
    with pytest.raises(ShapeError, match=r"the rows of B \(5\) must match the rows of A \(4\)"):
        output_shapes(op, [(4, 3), (5, 2), (3, 2)], {**op.params, "transpose_a": True})
    assert output_shapes(op, [(4, 3), (4, 2), (3, 2)], {**op.params, "transpose_a": True}) == ((3, 2),)


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_bindings_are_cached_by_operator_identity(framework):
    """A modified spec that reuses a registered name gets a binding of its own, and the
    framework's binding of the registered operator is not replaced by it (either order)."""
    from dataclasses import replace

    from xlinalg import api

    lib = pytest.importorskip(framework)
    op = operators()["inverse"]
    doubled = replace(op, forward=lambda xp, kern, a: (2 * kern.inv(a),))
    a_np = np.diag([2.0, 4.0])
    a = lib.numpy.asarray(a_np) if framework == "jax" else lib.tensor(a_np)
    assert np.allclose(np.asarray(xlinalg.inverse(a)), np.linalg.inv(a_np))
    assert np.allclose(np.asarray(api.call(doubled, (a,), {})), 2 * np.linalg.inv(a_np))
    assert np.allclose(np.asarray(xlinalg.inverse(a)), np.linalg.inv(a_np))
