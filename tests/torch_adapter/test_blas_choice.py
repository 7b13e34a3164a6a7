"""Which BLAS/LAPACK the PyTorch autograd node calls (:mod:`xlinalg.lapack.torch_blas`): torch's
MKL on an Intel CPU, SciPy's OpenBLAS elsewhere or when asked; both give the same results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.torch_adapter._helpers import torch
from xlinalg.lapack import torch_blas, torch_node

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(torch_node.library() is None, reason=f"no C++ node ({torch_node.reason()})")


@pytest.mark.parametrize(
    "setting, vendor, mkl",
    [("auto", "GenuineIntel", True), ("auto", "AuthenticAMD", False), ("auto", None, False),
     ("mkl", "AuthenticAMD", True), ("scipy", "GenuineIntel", False)],
)
def test_mkl_where_it_is_the_faster_or_asked_for(setting, vendor, mkl):
    assert torch_blas.wants_mkl(setting, vendor) is mkl


def test_the_node_names_the_blas_it_calls():
    """This process's node calls what the setting and the CPU choose, and says so."""
    blas = torch_node.blas()
    mkl = torch_blas.wants_mkl(torch_blas.choice(), torch_blas.cpu_vendor()) and torch.backends.mkl.is_available()
    assert blas.startswith("torch's MKL" if mkl else "SciPy's"), blas


def test_a_bad_setting_is_an_error():
    env = {**os.environ, "XLINALG_TORCH_BLAS": "openblas"}
    code = "import xlinalg.lapack.torch_node as t; t.library()"
    run = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode != 0 and "XLINALG_TORCH_BLAS must be one of auto, mkl, scipy, got 'openblas'" in run.stderr


# Every routine the node may take from MKL, forward and backward: potrf (potrf, trsm, gemm),
# potri, potrs, syevd, inverse (getrf), det, gelqf (geqrf, orgqr), gemm and gemm2 with every
# transposition (at order 20 a batch of 2 rectangular products in one gemm_batch call), syrk (gemm
# by blocks) both ways, in both precisions; batches of 2 (at order 150 in parts, one thread each)
# and, for the inverse and its kin, one matrix on two threads (A⁻¹ by solves on I).
_SCRIPT = r"""
import json, sys
import numpy as np, torch
import xlinalg.torch as xt
from xlinalg.lapack import torch_node
from tests.torch_adapter._helpers import inputs, structured
torch.set_num_threads(2)
out = {"blas": None}
cases = [(name, {}, (2,)) for name in ("potrf", "potri", "potrs", "syevd", "inverse", "det", "gelqf", "trsm")]
cases += [(name, {"transpose_a": ta, "transpose_b": tb}, (2,)) for name in ("gemm", "gemm2") for ta in (False, True) for tb in (False, True)]
cases += [("syrk", {"transpose": t}, (2,)) for t in (False, True)]
cases += [(name, {}, ()) for name in ("inverse", "det", "slogdet")]
for name, params, batch in cases:
    label = ":".join([name, *(k for k, v in params.items() if v), *(["one"] if batch == () else [])])
    for n in (20, 150):
        for dtype in ("float64", "float32"):
            rng = np.random.default_rng(16)
            xs = tuple(torch.tensor(x, requires_grad=True) for x in inputs(name, params, rng, batch=batch, n=n, dtype=dtype))
            ys = structured(name, params)(*xs)
            ws = [torch.tensor(rng.standard_normal(tuple(y.shape)), dtype=y.dtype) for y in ys]
            gs = torch.autograd.grad(sum((w * y).sum() for w, y in zip(ws, ys)), xs)
            out[f"{label}-{n}-{dtype}"] = [t.detach().double().numpy().ravel().tolist() for t in (*ys, *gs)]
out["blas"] = torch_node.blas()
json.dump(out, sys.stdout)
"""


def _results(setting):
    env = {**os.environ, "XLINALG_TORCH_BLAS": setting}
    run = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def test_mkl_and_scipy_give_the_same_results():
    """Outputs and gradients with torch's MKL agree with SciPy's to rounding (a routine bound to
    the wrong symbol, or called with another convention, would be off by far more)."""
    if not torch.backends.mkl.is_available():
        pytest.skip("this torch has no MKL")
    mkl, scipy = _results("mkl"), _results("scipy")
    assert mkl.pop("blas").startswith("torch's MKL") and scipy.pop("blas").startswith("SciPy's")
    for key, arrays in scipy.items():
        eps = np.finfo(key.rsplit("-", 1)[1]).eps
        n = int(key.split("-")[1])
        for a, b in zip(arrays, mkl[key]):
            a, b = np.asarray(a), np.asarray(b)
            assert np.abs(a - b).max() <= 100 * n * eps * max(1.0, np.abs(a).max()), key
