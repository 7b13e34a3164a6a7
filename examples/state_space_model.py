"""Linear-Gaussian state-space model: learn the noise scales and the velocity damping of a
tracking model by the gradient of the Kalman-filter log-likelihood, then smooth the track with
the Rauch–Tung–Striebel smoother, with the same model code in every installed framework.

    python examples/state_space_model.py [--frameworks numpy torch jax mxnet]
                                         [--size small|default|full] [--steps T]

Model: a point moving in the plane, state ``x_t = (position, velocity) ∈ R⁴``, observed
position ``y_t ∈ R²``:

    x_{t+1} = A x_t + w_t,   w_t ~ N(0, Q),    A = [[I, I], [0, ρ I]],  Q = q² [[I/3, I/2], [I/2, I]]
    y_t     = C x_t + v_t,   v_t ~ N(0, R),    C = [I, 0],              R = r² I
    x_0 ~ N(m_0, P_0),

with parameters ``θ = (log q, log r, atanh ρ)``: the damping ``ρ = tanh θ₃`` stays in (−1, 1),
so the velocity process is stationary at every parameter value the optimizer tries. The Kalman filter, from the prediction
``(m⁻_t, P⁻_t)`` and ``S_t = C P⁻_t Cᵀ + R = L_t L_tᵀ``:

    W_t = L_t⁻¹ C P⁻_t,   z_t = L_t⁻¹ (y_t − C m⁻_t)          (trsm)
    m_t = m⁻_t + W_tᵀ z_t,   P_t = P⁻_t − W_tᵀ W_t            (gemm, syrk: the gain is W_tᵀ L_t⁻¹)
    m⁻_{t+1} = A m_t,        P⁻_{t+1} = A P_t Aᵀ + Q          (gemm2, gemm)
    log p(y_{1:T} | θ) = Σ_t −½ z_tᵀ z_t − sumlogdiag(L_t) − log 2π.

The smoother runs backwards from ``(m^s_T, P^s_T) = (m_T, P_T)`` with
``G_tᵀ = (P⁻_{t+1})⁻¹ A P_t`` (potrf, potrs):

    m^s_t = m_t + G_t (m^s_{t+1} − m⁻_{t+1}),   P^s_t = P_t + G_t (P^s_{t+1} − P⁻_{t+1}) G_tᵀ.

The time recursions are written once with ``F.scan``, a Python loop in NumPy, PyTorch and
MXNet and ``jax.lax.scan`` in JAX (which compiles one step instead of T). All runs use L-BFGS
on ``−log p(y | θ)`` from the same start and should agree.
"""

from __future__ import annotations

import argparse
from typing import NamedTuple

import numpy as np
from frameworks import FRAMEWORKS, LOG_2PI, check_agreement, framework, minimize, select

SIZES = {"small": 15, "default": 50, "full": 200}  # T
TRUE_THETA = np.array([np.log(0.3), np.log(0.5), np.arctanh(0.9)])  # log q, log r, atanh ρ
THETA0 = np.array([0.0, 0.0, 0.0])


class Constants(NamedTuple):
    """The fixed matrices of the model: ``A = A0 + ρ A1``, ``Q = q² Q0``, ``C``, ``R = r² I_p``
    (``I_p``), and the initial state distribution ``N(m0, P0)``."""

    A0: object
    A1: object
    Q0: object
    C: object
    I_p: object
    m0: object
    P0: object


def constants() -> Constants:
    """The matrices of the tracking model (2-D position and velocity, unit time step), as NumPy
    arrays: ``x_0 ~ N(0, I)``."""
    i2, o2 = np.eye(2), np.zeros((2, 2))
    return Constants(
        A0=np.block([[i2, i2], [o2, o2]]), A1=np.block([[o2, o2], [o2, i2]]),
        Q0=np.block([[i2 / 3, i2 / 2], [i2 / 2, i2]]), C=np.block([i2, o2]), I_p=i2,
        m0=np.zeros((4, 1)), P0=np.eye(4),
    )


# ---- the model: written once ------------------------------------------------------------------
def system(F, theta, k):
    """``(A, Q, R)`` for ``θ = (log q, log r, atanh ρ)``."""
    rho = 1 - 2 / (F.exp(2 * theta[2]) + 1)  # tanh θ₃
    return k.A0 + rho * k.A1, F.exp(2 * theta[0]) * k.Q0, F.exp(2 * theta[1]) * k.I_p


def kalman_filter(F, theta, ys, k):
    """Log-likelihood of observations ``ys`` (T, p, 1) and the filter's moments: filtered
    ``m_t`` (T, d, 1), ``P_t`` (T, d, d) and one-step predictions ``m⁻_{t+1}``, ``P⁻_{t+1}``."""
    A, Q, R = system(F, theta, k)
    p = ys.shape[1]

    def step(prediction, y):
        m_pred, P_pred = prediction
        CP = F.gemm2(k.C, P_pred)  # C P⁻
        L = F.potrf(F.gemm(CP, k.C, R, transpose_b=True))  # S = C P⁻ Cᵀ + R = L Lᵀ
        W = F.trsm(L, CP)  # L⁻¹ C P⁻
        z = F.trsm(L, F.gemm(k.C, m_pred, y, alpha=-1.0))  # L⁻¹ (y − C m⁻)
        m = F.gemm(W, z, m_pred, transpose_a=True)  # m⁻ + Wᵀ z
        P = P_pred - F.syrk(W, transpose=True)  # P⁻ − Wᵀ W
        loglik = -0.5 * F.sum(z * z) - F.sumlogdiag(L) - 0.5 * p * LOG_2PI
        m_next = F.gemm2(A, m)
        P_next = F.gemm(F.gemm2(A, P), A, Q, transpose_b=True)  # A P Aᵀ + Q
        return (m_next, P_next), (m, P, m_next, P_next, loglik)

    _, (ms, Ps, m_preds, P_preds, logliks) = F.scan(step, (k.m0, k.P0), ys)
    return F.sum(logliks), (ms, Ps, m_preds, P_preds)


def negative_log_likelihood(F, theta, ys, k):
    """``−log p(y_{1:T} | θ)``: the objective the optimizer minimizes."""
    return -kalman_filter(F, theta, ys, k)[0]


def rts_smoother(F, theta, ys, k):
    """Smoothed means (T, d, 1) and covariances (T, d, d) of ``x_t`` given all of ``ys``,
    and the filtered means (T, d, 1)."""
    A = system(F, theta, k)[0]
    _, (ms, Ps, m_preds, P_preds) = kalman_filter(F, theta, ys, k)
    last = ys.shape[0] - 1

    def step(smoothed, filtered):
        ms_next, Ps_next = smoothed  # at t + 1
        m, P, m_pred, P_pred = filtered  # filtered at t, predicted for t + 1
        Gt = F.potrs(F.potrf(P_pred), F.gemm2(A, P))  # Gᵀ = (P⁻)⁻¹ A P
        m_s = F.gemm(Gt, ms_next - m_pred, m, transpose_a=True)  # m + G (m^s − m⁻)
        P_s = F.gemm(Gt, F.gemm2(Ps_next - P_pred, Gt), P, transpose_a=True)  # P + G (P^s − P⁻) Gᵀ
        return (m_s, P_s), (m_s, P_s)

    history = (ms[0:last], Ps[0:last], m_preds[0:last], P_preds[0:last])
    _, (m_smooth, P_smooth) = F.scan(step, (ms[last], Ps[last]), history, reverse=True)
    return F.concat([m_smooth, F.stack([ms[last]])]), F.concat([P_smooth, F.stack([Ps[last]])]), ms


# ---- data and the run -------------------------------------------------------------------------
def synthetic_data(steps: int, seed: int = 0):
    """States ``x`` (T, 4, 1) and observations ``y`` (T, 2, 1) drawn with ``TRUE_THETA``."""
    rng = np.random.default_rng(seed)
    k = constants()
    q, r, rho = np.exp(TRUE_THETA[0]), np.exp(TRUE_THETA[1]), np.tanh(TRUE_THETA[2])
    A, Q_chol = k.A0 + rho * k.A1, q * np.linalg.cholesky(k.Q0)
    x = np.linalg.cholesky(k.P0) @ rng.standard_normal((4, 1)) + k.m0
    xs, ys = [], []
    for _ in range(steps):
        xs.append(x)
        ys.append(k.C @ x + r * rng.standard_normal((2, 1)))
        x = A @ x + Q_chol @ rng.standard_normal((4, 1))
    return np.stack(xs), np.stack(ys)


def fit(name: str, ys):
    """Learn ``θ`` in framework ``name`` and smooth: returns a dict with ``theta``,
    ``loglik``, ``smoothed`` and ``filtered`` means (T, 4, 1), ``iterations``, ``seconds``."""
    F = framework(name)
    ys_f, k = F.data(ys), Constants(*F.data(*constants()))
    value_and_grad = F.value_and_grad(negative_log_likelihood)
    result = minimize(lambda th: value_and_grad(th, ys_f, k), THETA0)
    if not result.success:
        raise SystemExit(f"{name}: the optimizer did not converge: {result.message}")
    smoothed, _, filtered = F.evaluate(rts_smoother)(result.x, ys_f, k)
    return {"theta": result.x, "loglik": -result.fun, "smoothed": smoothed, "filtered": filtered,
            "iterations": result.nit, "seconds": result.seconds}


def rmse(estimate, xs):
    """Root-mean-square error of the estimated positions (the first two state components)."""
    return float(np.sqrt(np.mean((estimate[:, :2] - xs[:, :2]) ** 2)))


def run(frameworks=FRAMEWORKS, size="default", steps=None, out=print):
    """Fit and smooth in each installed framework, print the table and check agreement;
    returns ``{framework: result}`` (see :func:`fit`) and the data ``(xs, ys)``."""
    steps = steps or SIZES[size]
    xs, ys = synthetic_data(steps)
    q, r, rho = np.exp(TRUE_THETA[0]), np.exp(TRUE_THETA[1]), np.tanh(TRUE_THETA[2])
    out(f"Linear-Gaussian state-space model, T = {steps}, state dimension 4 (data drawn with q = {q:g}, r = {r:g}, ρ = {rho:g})")
    out(f"position RMSE of the raw observations: {rmse(ys, xs):.4f}")
    out(f"{'framework':<10}{'q':>9}{'r':>9}{'ρ':>9}{'log lik':>13}{'RMSE filt':>11}{'RMSE smooth':>13}{'iters':>7}{'seconds':>9}")
    results = {}
    for name in select(frameworks, out):
        res = results[name] = fit(name, ys)
        q_hat, r_hat, rho_hat = np.exp(res["theta"][0]), np.exp(res["theta"][1]), np.tanh(res["theta"][2])
        out(f"{name:<10}{q_hat:>9.5f}{r_hat:>9.5f}{rho_hat:>9.5f}{res['loglik']:>13.6f}"
            f"{rmse(res['filtered'], xs):>11.4f}{rmse(res['smoothed'], xs):>13.4f}{res['iterations']:>7}{res['seconds']:>9.2f}")
    check_agreement(results, {"theta": 1e-6, "loglik": 1e-7 * steps, "smoothed": 1e-6}, out)
    return results, (xs, ys)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frameworks", nargs="*", default=list(FRAMEWORKS))
    p.add_argument("--size", choices=list(SIZES), default="default", help="small (tests), default (seconds) or full (T = 200)")
    p.add_argument("--steps", type=int, help="number of time steps T (overrides --size)")
    args = p.parse_args(argv)
    run(args.frameworks, args.size, args.steps)


if __name__ == "__main__":
    main()
