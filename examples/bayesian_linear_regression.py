"""Bayesian linear regression: maximize the log evidence over the prior precision α and the
noise precision β, with the same model code in every installed framework.

    python examples/bayesian_linear_regression.py [--frameworks numpy torch jax mxnet]
                                                  [--size small|default|full] [--n N] [--d D]

Model: ``y = Φ w + ε`` with design matrix ``Φ`` (N × D), prior ``w ~ N(0, α⁻¹ I)`` and noise
``ε ~ N(0, β⁻¹ I)``. With the posterior precision ``A = α I + β ΦᵀΦ = L Lᵀ`` and
``c = L⁻¹ Φᵀ y``, the log evidence (marginal likelihood) is

    log p(y | α, β) = (D/2) log α + (N/2) log β − (β/2) yᵀy + (β²/2) cᵀc − ½ log det A
                      − (N/2) log 2π,
    ½ log det A = sumlogdiag(L),   L = potrf(α I + β · syrk(Φᵀ)),   c = trsm(L, Φᵀ y),

because ``(β/2)‖y − Φ m‖² + (α/2)‖m‖² = (β/2) yᵀy − (β²/2) yᵀΦ A⁻¹ Φᵀ y`` at the posterior mean
``m = β A⁻¹ Φᵀ y = β potrs(L, Φᵀ y)``. Only D × D matrices are factorized, so N can be large.

``log_evidence`` below is written once; its gradient with respect to ``(log α, log β)`` comes
from each framework's autograd (NumPy: the tape of ``frameworks.py``), and the evidence is
maximized by gradient ascent with L-BFGS steps on ``(log α, log β)``. At the maximum, MacKay's
fixed-point equations hold: ``α = γ / ‖m‖²`` and ``β = (N − γ) / ‖y − Φ m‖²`` with
``γ = Σᵢ βλᵢ / (α + βλᵢ)`` over the eigenvalues ``λᵢ`` of ``ΦᵀΦ``.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from frameworks import FRAMEWORKS, LOG_2PI, check_agreement, framework, minimize, select

SIZES = {"small": (200, 5), "default": (1000, 20), "full": (2000, 50)}  # (N, D)
TRUE_ALPHA, TRUE_BETA = 2.0, 25.0


# ---- the model: written once ------------------------------------------------------------------
def posterior_factor(F, theta, Phi, y, eye):
    """The Cholesky factor ``L`` of ``A = α I + β ΦᵀΦ`` and ``Φᵀ y``, for
    ``θ = (log α, log β)``."""
    alpha, beta = F.exp(theta[0]), F.exp(theta[1])
    A = alpha * eye + beta * F.syrk(Phi, transpose=True)  # syrk(Φ, transpose) = ΦᵀΦ
    return F.potrf(A), F.gemm2(Phi, y, transpose_a=True)


def log_evidence(F, theta, Phi, y, eye):
    """``log p(y | α, β)`` for ``θ = (log α, log β)``, ``Φ`` of shape (N, D), ``y`` (N, 1)."""
    N, D = Phi.shape
    beta = F.exp(theta[1])
    L, Phi_y = posterior_factor(F, theta, Phi, y, eye)
    c = F.trsm(L, Phi_y)  # L⁻¹ Φᵀ y
    return (
        0.5 * D * theta[0] + 0.5 * N * theta[1] - 0.5 * beta * F.sum(y * y) + 0.5 * beta**2 * F.sum(c * c)
        - F.sumlogdiag(L) - 0.5 * N * LOG_2PI
    )


def negative_log_evidence(F, theta, Phi, y, eye):
    """``−log p(y | α, β)``: the objective the optimizer minimizes."""
    return -log_evidence(F, theta, Phi, y, eye)


def posterior_mean(F, theta, Phi, y, eye):
    """``m = β A⁻¹ Φᵀ y``, shape (D, 1)."""
    L, Phi_y = posterior_factor(F, theta, Phi, y, eye)
    return F.exp(theta[1]) * F.potrs(L, Phi_y)


# ---- data and the run -------------------------------------------------------------------------
def synthetic_data(n: int, d: int, seed: int = 0):
    """``Φ`` with standard normal entries, weights drawn from the prior (``α = 2``), noise of
    precision ``β = 25``; returns ``(Φ, y, I_D, w)``."""
    rng = np.random.default_rng(seed)
    Phi = rng.standard_normal((n, d))
    w = rng.standard_normal((d, 1)) / math.sqrt(TRUE_ALPHA)
    y = Phi @ w + rng.standard_normal((n, 1)) / math.sqrt(TRUE_BETA)
    return Phi, y, np.eye(d), w


def mackay_residual(theta, Phi, y):
    """Relative violation of MacKay's fixed-point equations at ``θ = (log α, log β)``
    (zero at a stationary point of the evidence), computed independently with NumPy."""
    alpha, beta = np.exp(theta)
    lam = np.linalg.eigvalsh(Phi.T @ Phi)
    m = beta * np.linalg.solve(alpha * np.eye(Phi.shape[1]) + beta * Phi.T @ Phi, Phi.T @ y)
    gamma = np.sum(beta * lam / (alpha + beta * lam))
    r_alpha = gamma / np.sum(m**2) / alpha - 1
    r_beta = (Phi.shape[0] - gamma) / np.sum((y - Phi @ m) ** 2) / beta - 1
    return max(abs(r_alpha), abs(r_beta))


def fit(name: str, data):
    """Maximize the evidence in framework ``name``: returns a dict with ``theta`` (log α,
    log β), ``log_evidence``, ``mean`` (posterior mean weights), ``iterations``, ``seconds``."""
    F = framework(name)
    Phi, y, eye = F.data(*data[:3])
    value_and_grad = F.value_and_grad(negative_log_evidence)
    result = minimize(lambda th: value_and_grad(th, Phi, y, eye), np.zeros(2))
    if not result.success:
        raise SystemExit(f"{name}: the optimizer did not converge: {result.message}")
    mean = F.evaluate(posterior_mean)(result.x, Phi, y, eye)
    return {"theta": result.x, "log_evidence": -result.fun, "mean": mean, "iterations": result.nit, "seconds": result.seconds}


def run(frameworks=FRAMEWORKS, size="default", n=None, d=None, out=print):
    """Fit in each installed framework, print the table and check agreement; returns
    ``{framework: result}`` (see :func:`fit`) and the data."""
    n0, d0 = SIZES[size]
    n, d = n or n0, d or d0
    data = synthetic_data(n, d)
    w = data[3]
    out(f"Bayesian linear regression, N = {n}, D = {d} (data drawn with α = {TRUE_ALPHA:g}, β = {TRUE_BETA:g})")
    out(f"{'framework':<10}{'α':>10}{'β':>10}{'log evidence':>16}{'‖m − w‖/‖w‖':>14}{'iters':>7}{'seconds':>9}")
    results = {}
    for name in select(frameworks, out):
        r = results[name] = fit(name, data)
        alpha, beta = np.exp(r["theta"])
        err = np.linalg.norm(r["mean"] - w) / np.linalg.norm(w)
        out(f"{name:<10}{alpha:>10.5f}{beta:>10.4f}{r['log_evidence']:>16.6f}{err:>14.2e}{r['iterations']:>7}{r['seconds']:>9.2f}")
    check_agreement(results, {"theta": 1e-6, "log_evidence": 1e-6 * n, "mean": 1e-6}, out)
    return results, data


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frameworks", nargs="*", default=list(FRAMEWORKS))
    p.add_argument("--size", choices=list(SIZES), default="default", help="small (tests), default (seconds) or full (N = 2000, D = 50)")
    p.add_argument("--n", type=int, help="number of observations (overrides --size)")
    p.add_argument("--d", type=int, help="number of features (overrides --size)")
    args = p.parse_args(argv)
    run(args.frameworks, args.size, args.n, args.d)


if __name__ == "__main__":
    main()
