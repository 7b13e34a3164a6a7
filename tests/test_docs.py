"""The generated reference pages (operators, other functions) match the code they come from."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_operator_reference_is_up_to_date():
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "make_reference.py"), "--check"],
        capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_example_gives_the_gp_gradient():
    import re

    import numpy as np

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    namespace = {}
    exec(code, namespace)
    rng = np.random.default_rng(0)
    m = rng.standard_normal((5, 5))
    K, y = m @ m.T + 5 * np.eye(5), rng.standard_normal((5, 1))
    nll, g_K = namespace["nll_and_grad"](K, y)
    a = np.linalg.solve(K, y)
    assert np.isclose(nll, 0.5 * (y.T @ a).item() + 0.5 * np.linalg.slogdet(K)[1], rtol=1e-12)
    np.testing.assert_allclose(g_K, 0.5 * (np.linalg.inv(K) - a @ a.T), atol=1e-12)
