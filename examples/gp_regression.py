"""Gaussian process regression: fit the kernel hyperparameters by maximizing the log marginal
likelihood, with the same model code in every installed framework.

    python examples/gp_regression.py [--frameworks numpy torch jax mxnet]
                                     [--size small|default|full] [--n N]

Model: ``y = f(x) + ε``, ``f ~ GP(0, k)``, ``k(x, x') = s² exp(−|x − x'|² / (2ℓ²))``,
``ε ~ N(0, σ²)``. The negative log marginal likelihood of ``K = k(X, X) + σ² I`` is

    nll = ½ yᵀ K⁻¹ y + ½ log det K + (n/2) log 2π
        = ½ yᵀ α + sumlogdiag(L) + (n/2) log 2π,   L = potrf(K),  α = potrs(L, y).

``negative_log_likelihood`` below is written once with xlinalg operators; PyTorch, JAX and
MXNet differentiate it with their own autograd, NumPy through :func:`xlinalg.vjp`. All runs
use SciPy's L-BFGS-B from the same start and should reach the same hyperparameters.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import scipy.optimize
from frameworks import FRAMEWORKS, check_agreement, select

import xlinalg

SIZES = {"small": 20, "default": 60, "full": 400}  # number of training points

# ---- the model: written once ------------------------------------------------------------------
def kernel_matrix(exp, theta, sqdist, eye):
    """``K(θ)`` for ``θ = (log ℓ, log s, log σ)``; ``exp`` is the framework's exponential."""
    log_ell, log_s, log_sigma = theta[0], theta[1], theta[2]
    return exp(2 * log_s) * exp(-0.5 * sqdist * exp(-2 * log_ell)) + exp(2 * log_sigma) * eye


def negative_log_likelihood(K, y):
    """``½ yᵀ K⁻¹ y + ½ log det K + (n/2) log 2π`` for ``y`` of shape ``(n, 1)``."""
    n = y.shape[0]
    L = xlinalg.potrf(K)
    alpha = xlinalg.potrs(L, y)
    fit = xlinalg.gemm2(y, alpha, transpose_a=True, alpha=0.5)  # (1, 1)
    return fit[0, 0] + xlinalg.sumlogdiag(L) + 0.5 * n * math.log(2 * math.pi)


# ---- data -------------------------------------------------------------------------------------
def synthetic_data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-3, 3, n))
    y = np.sin(2.0 * x) + 0.5 * np.cos(5.0 * x) + 0.1 * rng.standard_normal(n)
    sqdist = (x[:, None] - x[None, :]) ** 2
    return sqdist, np.eye(n), y[:, None]


# ---- one value-and-gradient function per framework --------------------------------------------
def numpy_objective(sqdist, eye, y):
    """NumPy has no autograd: the xlinalg part is chained with ``xlinalg.vjp``, the kernel's
    derivative ``∂K/∂θ`` is written out."""

    def value_and_grad(theta):
        K = kernel_matrix(np.exp, theta, sqdist, eye)
        L, potrf_pullback = xlinalg.vjp(xlinalg.potrf, K)
        alpha, potrs_pullback = xlinalg.vjp(xlinalg.potrs, L, y)
        fit, gemm2_pullback = xlinalg.vjp(xlinalg.gemm2, y, alpha, transpose_a=True, alpha=0.5)
        logdet, sumlogdiag_pullback = xlinalg.vjp(xlinalg.sumlogdiag, L)
        nll = fit[0, 0] + logdet + 0.5 * len(y) * math.log(2 * math.pi)
        _, g_alpha = gemm2_pullback(np.ones((1, 1)))
        g_L, _ = potrs_pullback(g_alpha)
        (g_L_logdet,) = sumlogdiag_pullback(np.ones(()))
        (g_K,) = potrf_pullback(g_L + g_L_logdet)
        signal = np.exp(2 * theta[1]) * np.exp(-0.5 * sqdist * np.exp(-2 * theta[0]))
        dK = (signal * sqdist * np.exp(-2 * theta[0]), 2 * signal, 2 * np.exp(2 * theta[2]) * eye)
        return float(nll), np.array([np.sum(g_K * d) for d in dK])

    return value_and_grad


def torch_objective(sqdist, eye, y):
    import torch

    sqdist, eye, y = (torch.from_numpy(a) for a in (sqdist, eye, y))

    def value_and_grad(theta):
        theta = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
        nll = negative_log_likelihood(kernel_matrix(torch.exp, theta, sqdist, eye), y)
        nll.backward()
        return float(nll.detach()), theta.grad.numpy()

    return value_and_grad


def jax_objective(sqdist, eye, y):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    sqdist, eye, y = (jnp.asarray(a) for a in (sqdist, eye, y))
    loss = jax.jit(jax.value_and_grad(lambda th: negative_log_likelihood(kernel_matrix(jnp.exp, th, sqdist, eye), y)))

    def value_and_grad(theta):
        value, grad = loss(jnp.asarray(theta))
        return float(value), np.asarray(grad)

    return value_and_grad


def mxnet_objective(sqdist, eye, y):
    import mxnet as mx

    sqdist, eye, y = (mx.nd.array(a, dtype="float64") for a in (sqdist, eye, y))

    def value_and_grad(theta):
        theta = mx.nd.array(theta, dtype="float64")
        theta.attach_grad()
        with mx.autograd.record():
            nll = negative_log_likelihood(kernel_matrix(mx.nd.exp, theta, sqdist, eye), y)
        nll.backward()
        return float(nll.asscalar()), theta.grad.asnumpy()

    return value_and_grad


OBJECTIVES = {"numpy": numpy_objective, "torch": torch_objective, "jax": jax_objective, "mxnet": mxnet_objective}


def fit(framework: str, data, theta0):
    value_and_grad = OBJECTIVES[framework](*data)
    start = time.perf_counter()
    result = scipy.optimize.minimize(value_and_grad, theta0, jac=True, method="L-BFGS-B")
    return result, time.perf_counter() - start


def run(frameworks=FRAMEWORKS, size="default", n=None, out=print):
    """Fit in each installed framework, print the table and check agreement; returns
    ``{framework: {"theta", "loglik", "iterations", "seconds"}}``."""
    n = n or SIZES[size]
    data = synthetic_data(n)
    theta0 = np.zeros(3)
    out(f"GP regression on {n} points; hyperparameters θ = (lengthscale ℓ, signal s, noise σ)")
    out(f"{'framework':<10}{'ℓ':>10}{'s':>10}{'σ':>10}{'log lik':>14}{'iters':>7}{'seconds':>9}")
    results = {}
    for framework in select(frameworks, out):
        result, seconds = fit(framework, data, theta0)
        if not result.success:
            raise SystemExit(f"{framework}: the optimizer did not converge: {result.message}")
        ell, s, sigma = np.exp(result.x)
        results[framework] = {"theta": result.x, "loglik": -result.fun, "iterations": result.nit, "seconds": seconds}
        out(f"{framework:<10}{ell:>10.5f}{s:>10.5f}{sigma:>10.5f}{-result.fun:>14.6f}{result.nit:>7}{seconds:>9.2f}")
    check_agreement(results, {"theta": 1e-4, "loglik": 1e-6}, out)
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frameworks", nargs="*", default=list(OBJECTIVES))
    p.add_argument("--size", choices=list(SIZES), default="default", help="small (tests), default or full (400 points)")
    p.add_argument("--n", type=int, help="number of training points (overrides --size)")
    args = p.parse_args(argv)
    run(args.frameworks, args.size, args.n)


if __name__ == "__main__":
    main()
