"""The generated reference pages (operators, other functions) match the code they come from, and
the examples that open the README and the framework pages run and give the GP gradient (torch's:
the one torch.linalg gives)."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_generated_reference_pages_are_up_to_date():
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "make_reference.py"), "--check"],
        capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _first_example(page: str) -> dict:
    """The namespace the first Python block of ``page`` leaves behind."""
    text = (ROOT / page).read_text(encoding="utf-8")
    code = re.search(r"^```python\n(.*?)^```", text, re.S | re.M).group(1)
    namespace = {"__name__": "__example__"}
    exec(compile(code, page, "exec"), namespace)
    return namespace


def _gp_gradient(K, y):
    """``∂/∂K (½ yᵀK⁻¹y + ½ log det K) = ½ (K⁻¹ − a aᵀ)``, ``a = K⁻¹y``."""
    a = np.linalg.solve(K, y)
    return 0.5 * (np.linalg.inv(K) - a @ a.T)


def test_readme_example_gives_the_gp_gradient():
    namespace = _first_example("README.md")
    rng = np.random.default_rng(0)
    m = rng.standard_normal((5, 5))
    K, y = m @ m.T + 5 * np.eye(5), rng.standard_normal((5, 1))
    nll, g_K = namespace["nll_and_grad"](K, y)
    a = np.linalg.solve(K, y)
    assert np.isclose(nll, 0.5 * (y.T @ a).item() + 0.5 * np.linalg.slogdet(K)[1], rtol=1e-12)
    np.testing.assert_allclose(g_K, _gp_gradient(K, y), atol=1e-12)


def test_jax_page_example_gives_the_gp_gradient():
    pytest.importorskip("jax")
    ns = _first_example("docs/jax.md")
    K, y = np.asarray(ns["K"]), np.asarray(ns["y"])
    np.testing.assert_allclose(np.asarray(ns["g"]), _gp_gradient(K, y), atol=1e-12)


def test_mxnet_page_example_gives_the_gp_gradient():
    pytest.importorskip("mxnet")
    ns = _first_example("docs/mxnet.md")
    K, y = ns["x"].asnumpy(), ns["y"].asnumpy()
    np.testing.assert_allclose(ns["x"].grad.asnumpy(), _gp_gradient(K, y), atol=1e-12)


def test_torch_page_example_gives_the_native_gradients():
    torch = pytest.importorskip("torch")
    ns = _first_example("docs/torch.md")
    log_ls, noise = (ns[k].detach().clone().requires_grad_(True) for k in ("log_ls", "noise"))
    x, y, n = ns["x"], ns["y"], ns["n"]
    K = ns["kernel"](x, log_ls) + noise * torch.eye(n, dtype=x.dtype)
    L = torch.linalg.cholesky(K)
    nll = 0.5 * (y * torch.cholesky_solve(y, L)).sum() + torch.log(torch.diagonal(L)).sum()
    nll = nll + 0.5 * n * np.log(2 * np.pi)
    nll.backward()
    assert torch.allclose(ns["nll"], nll, rtol=1e-12)
    assert torch.allclose(ns["log_ls"].grad, log_ls.grad, rtol=1e-9)
    assert torch.allclose(ns["noise"].grad, noise.grad, rtol=1e-9)
