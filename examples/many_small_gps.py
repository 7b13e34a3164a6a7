"""Many small problems at once: the marginal likelihoods of thousands of independent 8-point
Gaussian processes and their gradients in one batched computation, then every problem's
hyperparameters fitted together, with the same model code in every installed framework.

    python examples/many_small_gps.py [--frameworks numpy torch jax mxnet]
                                      [--size small|default|full] [--problems B]

Model: problem ``b`` has its own inputs ``x_b`` (8 points), outputs ``y_b`` and hyperparameters
``θ_b = (log ℓ_b, log s_b, log σ_b)``; ``y_b ~ N(0, K_b)`` with
``K_b = s_b² exp(−|x − x'|² / (2ℓ_b²)) + σ_b² I``, and ``θ_b ~ N(μ, I)`` a priori. The negative
log posterior of one problem, up to a constant,

    nlp_b = ½ ‖L_b⁻¹ y_b‖² + sumlogdiag(L_b) + (n/2) log 2π + ½ ‖θ_b − μ‖²,   L_b = potrf(K_b),

is written once for one problem. NumPy, PyTorch and MXNet run it on all problems at once:
the operators take a leading batch axis (``K`` of shape (B, 8, 8)) and the scalars broadcast.
JAX maps the one-problem function with ``jax.vmap``. The gradient of ``Σ_b nlp_b`` with respect to
all ``θ_b`` (3 × B numbers) is then every problem's own gradient, from one backward pass;
a batched damped Newton method (:func:`newton`) then fits all problems at once.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from frameworks import FRAMEWORKS, LOG_2PI, check_agreement, framework, select

import xlinalg

SIZES = {"small": 200, "default": 2000, "full": 10_000}  # B, the number of problems
POINTS = 8  # n, the points per problem
PRIOR_MEAN = (0.0, 0.0, -2.0)  # μ = (log ℓ, log s, log σ): lengthscale 1, signal 1, noise 0.14


# ---- the model: written once, for one problem -------------------------------------------------
def negative_log_posterior(F, theta, sqdist, y, eye):
    """``nlp`` of one problem: ``θ`` of shape (3, 1, 1), squared distances (n, n), ``y``
    (n, 1), ``eye`` the n × n identity. Leading batch axes after the first axis of ``θ`` and
    before the matrix axes of ``sqdist`` and ``y`` give one ``nlp`` per problem."""
    log_ell, log_s, log_sigma = theta[0], theta[1], theta[2]
    K = F.exp(2 * log_s - 0.5 * sqdist * F.exp(-2 * log_ell)) + F.exp(2 * log_sigma) * eye
    L = F.potrf(K)
    z = F.trsm(L, y)  # L⁻¹ y
    n = y.shape[-2]
    nll = 0.5 * F.sum(z * z, axis=(-2, -1)) + F.sumlogdiag(L) + 0.5 * n * LOG_2PI
    mu_ell, mu_s, mu_sigma = PRIOR_MEAN
    prior = 0.5 * ((log_ell - mu_ell) ** 2 + (log_s - mu_s) ** 2 + (log_sigma - mu_sigma) ** 2)
    return nll + F.sum(prior, axis=(-2, -1))


def per_problem(F, theta, sqdist, y, eye):
    """``nlp_b`` for every problem, shape (B,): θ (3, B, 1, 1), sqdist (B, n, n), y (B, n, 1)."""
    return F.vmap(negative_log_posterior, in_axes=(1, 0, 0, None))(F, theta, sqdist, y, eye)


def total(F, theta, sqdist, y, eye):
    """``Σ_b nlp_b``: its gradient with respect to θ (3, B, 1, 1) holds each problem's own."""
    return F.sum(per_problem(F, theta, sqdist, y, eye))


# ---- data and the run -------------------------------------------------------------------------
def synthetic_data(problems: int, seed: int = 0):
    """Hyperparameters drawn from the prior, inputs uniform on [−2, 2], outputs from each GP:
    returns ``(sqdist (B, n, n), y (B, n, 1), I_n, θ_true (3, B, 1, 1))``."""
    rng = np.random.default_rng(seed)
    theta = np.asarray(PRIOR_MEAN)[:, None, None, None] + rng.standard_normal((3, problems, 1, 1))
    x = np.sort(rng.uniform(-2, 2, (problems, POINTS)), axis=-1)
    sqdist = (x[:, :, None] - x[:, None, :]) ** 2
    eye = np.eye(POINTS)
    K = np.exp(2 * theta[1] - 0.5 * sqdist * np.exp(-2 * theta[0])) + np.exp(2 * theta[2]) * eye
    y = np.linalg.cholesky(K) @ rng.standard_normal((problems, POINTS, 1))
    return sqdist, y, eye, theta


def start(problems: int):
    """Every problem starts at the prior mean."""
    return np.broadcast_to(np.asarray(PRIOR_MEAN)[:, None, None, None], (3, problems, 1, 1)).copy()


def evaluate(name: str, data, repeats: int = 3):
    """At the start: ``nlp`` per problem, the gradient (3, B, 1, 1) and the median seconds of
    one batched value-and-gradient evaluation (after a first, compiling, call)."""
    F = framework(name)
    arrays = F.data(*data[:3])
    theta0 = start(data[0].shape[0])
    value_and_grad = F.value_and_grad(total)
    _, grad = value_and_grad(theta0, *arrays)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        value_and_grad(theta0, *arrays)
        times.append(time.perf_counter() - t)
    nlp = F.evaluate(per_problem)(theta0, *arrays)
    return {"nlp0": nlp, "grad0": grad, "eval_seconds": float(np.median(times))}, value_and_grad, arrays


def newton(value_and_grad, values, theta, iterations=100, tol=1e-7, fd_step=1e-6):
    """Minimize every problem's ``nlp_b`` at once by damped Newton steps (Levenberg–Marquardt).

    Parameters
    ----------
    value_and_grad : callable
        ``θ -> (Σ_b nlp_b, ∂/∂θ)`` for θ of shape (3, B, 1, 1).
    values : callable
        ``θ -> nlp`` of shape (B,).
    theta : ndarray, shape (3, B, 1, 1)
        The start.
    iterations, tol, fd_step
        At most ``iterations`` steps; a problem has converged when ``max |∂nlp_b/∂θ_b| < tol``.
        The problems do not interact, so column ``j`` of every problem's 3 × 3 Hessian ``H_b`` is
        the forward difference of the batched gradient when ``θ_j`` of all problems moves by
        ``fd_step``: three batched gradients give all ``B`` Hessians.

    Returns
    -------
    theta, nlp, iterations, converged
        The fitted θ, its ``nlp_b``, the steps taken and a boolean mask of converged problems.

    Notes
    -----
    Each problem steps by ``δ_b = −(|H_b| + λ_b I)⁻¹ g_b`` (entries clipped to ±1), where
    ``|H_b| = V |diag(w)| Vᵀ`` for ``H_b = V diag(w) Vᵀ``: a Newton step where ``H_b`` is positive
    definite, and a descent step that leaves saddle points along negative curvature where it is
    not. The step is taken when it does not raise ``nlp_b`` (beyond rounding); ``λ_b`` shrinks
    by 3 after a taken step and grows by 10 after a refused one. Each problem's path depends on
    its own numbers only; the fit is the local minimum that path reaches.
    """
    problems = theta.shape[1]

    def grads(th):
        return np.asarray(value_and_grad(th)[1]).reshape(3, problems).T  # (B, 3)

    def safe_values(th):
        try:
            return np.asarray(values(th))
        except xlinalg.LinAlgError:  # a trial K too close to singular: refuse every step
            return np.full(problems, np.inf)

    f, g = np.asarray(values(theta)), grads(theta)
    lam = np.full(problems, 1e-3)
    for it in range(iterations):  # noqa: B007  (the count is returned)
        active = np.max(np.abs(g), axis=1) >= tol
        if not active.any():
            break
        H = np.empty((problems, 3, 3))
        for j in range(3):
            e = np.zeros((3, 1, 1, 1))
            e[j] = fd_step
            H[:, :, j] = (grads(theta + e) - g) / fd_step
        w, V = np.linalg.eigh(0.5 * (H + H.transpose(0, 2, 1)))
        scale = 1 / (np.abs(w) + lam[:, None])  # (|H_b| + λ_b I)⁻¹ in H_b's eigenbasis
        delta = -np.einsum("bij,bj,bkj,bk->bi", V, scale, V, g)
        delta = np.clip(delta, -1.0, 1.0)
        move = active & (np.sum(delta * g, axis=1) < 0)
        trial = theta + np.where(move[:, None], delta, 0.0).T.reshape(3, problems, 1, 1)
        f_trial = safe_values(trial)
        take = move & (f_trial <= f + 1e-9 * (1 + np.abs(f)))
        theta = np.where(take[None, :, None, None], trial, theta)
        f = np.where(take, f_trial, f)
        lam = np.where(take, lam / 3, np.where(active, lam * 10, lam))
        g = grads(theta)
    converged = np.max(np.abs(g), axis=1) < tol
    return theta, f, it, converged


def fit(name: str, data, repeats: int = 3):
    """:func:`evaluate`, then :func:`newton` on all problems: adds ``theta`` (3, B, 1, 1),
    ``nlp`` (the fitted ``nlp_b``), ``iterations``, ``converged`` (count) and ``seconds``."""
    res, value_and_grad, arrays = evaluate(name, data, repeats)
    values = framework(name).evaluate(per_problem)
    t = time.perf_counter()
    theta, nlp, iterations, converged = newton(lambda th: value_and_grad(th, *arrays), lambda th: values(th, *arrays),
                                               start(data[0].shape[0]))
    return {**res, "theta": theta, "nlp": nlp, "iterations": iterations, "converged": int(converged.sum()),
            "seconds": time.perf_counter() - t}


def run(frameworks=FRAMEWORKS, size="default", problems=None, out=print):
    """Evaluate and fit in each installed framework, print the table and check agreement;
    returns ``{framework: result}`` (see :func:`fit`) and the data."""
    problems = problems or SIZES[size]
    data = synthetic_data(problems)
    theta_true = data[3]
    out(f"{problems} independent GP problems of {POINTS} points: θ_b = (log ℓ, log s, log σ), prior N(μ = {PRIOR_MEAN}, I)")
    out(f"{'framework':<10}{'ms/eval':>9}{'mean nlp at μ':>15}{'mean nlp fit':>14}{'|θ − θ_true|':>14}{'converged':>11}{'iters':>7}{'seconds':>9}")
    results = {}
    for name in select(frameworks, out):
        r = results[name] = fit(name, data)
        err = np.mean(np.abs(r["theta"] - theta_true))
        out(f"{name:<10}{1e3 * r['eval_seconds']:>9.2f}{np.mean(r['nlp0']):>15.6f}{np.mean(r['nlp']):>14.6f}"
            f"{err:>14.4f}{r['converged']:>11}{r['iterations']:>7}{r['seconds']:>9.2f}")
    check_agreement(results, {"nlp0": 1e-8, "grad0": 1e-7, "theta": 1e-6, "nlp": 1e-8}, out)
    return results, data


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frameworks", nargs="*", default=list(FRAMEWORKS))
    p.add_argument("--size", choices=list(SIZES), default="default", help="small (tests), default (seconds) or full (10 000 problems)")
    p.add_argument("--problems", type=int, help="number of problems B (overrides --size)")
    args = p.parse_args(argv)
    run(args.frameworks, args.size, args.problems)


if __name__ == "__main__":
    main()
