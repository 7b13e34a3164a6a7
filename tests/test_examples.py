"""The examples in ``examples/``: each model, at its small size, is right in NumPy (against
finite differences and against an independent dense computation) and every other installed
framework (PyTorch, JAX in the main environment; MXNet in its own) gives the same fit.

A framework that is not installed is skipped, so the same file serves both environments.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
sys.path.insert(0, EXAMPLES)

import bayesian_linear_regression as blr
import frameworks
import gp_regression
import many_small_gps as msg
import state_space_model as ssm
from frameworks import Var, framework, installed

# MXNet's nd.array warns about a SciPy name whenever it copies a NumPy array.
pytestmark = pytest.mark.filterwarnings("ignore:Please use `csr_matrix`:DeprecationWarning")
OTHERS = [pytest.param(name, marks=pytest.mark.skipif(not installed(name), reason=f"{name} not installed")) for name in ("torch", "jax", "mxnet")]


def quiet(*_):
    pass


def central_differences(f, x, h=1e-6):
    """∂f/∂x by central differences, for a scalar ``f`` of an array ``x``."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def assert_close(a, b, tol, what):
    diff = float(np.max(np.abs(np.asarray(a) - np.asarray(b)), initial=0.0))
    assert diff <= tol, f"{what}: largest difference {diff:.3e} > {tol:g}"


# ---- the NumPy tape ---------------------------------------------------------------------------
def test_tape_matches_finite_differences():
    """Every taped operation, with broadcasting, indexing, reshape, stack and concat, chained
    through xlinalg operators."""
    F = framework("numpy")
    rng = np.random.default_rng(0)
    B = rng.standard_normal((3, 4))
    M = rng.standard_normal((2, 3, 3))

    def model(F, theta, B, M):
        a, b = theta[0], theta[1:3].reshape((2, 1, 1))
        S = F.syrk(F.exp(a) * B) + F.exp(b) * (1.5 + 0 * M)  # (2, 3, 3), batch from b
        L = F.potrf(S)
        z = F.trsm(L, F.gemm(M, L, M, alpha=0.5, beta=-1.0))
        parts = F.stack([F.sum(z * z / 3.0, axis=(-2, -1)), F.sumlogdiag(L) ** 2])
        tail = F.concat([parts.reshape((-1,)), F.log(2.0 + theta * theta)])
        c = theta[3]
        reflected = (2.0 - c) * (0.5 + c) / (3.0 + c) + 1.0 / (4.0 - c) - M[0, 0, 0] * c + (-c) ** 3
        return F.sum(tail[1:]) - 1.0 / (1.0 + F.sum(tail[:2])) + (c - 2.0) * a + reflected

    theta = np.array([0.3, -0.2, 0.1, 0.7])
    value, grad = F.value_and_grad(model)(theta, B, M)
    assert value == pytest.approx(float(F.evaluate(model)(theta, B, M)), rel=1e-14)
    fd = central_differences(lambda t: F.evaluate(model)(t, B, M), theta)
    assert_close(grad, fd, 1e-6 * (1 + np.max(np.abs(fd))), "tape vs finite differences")


def test_tape_shares_subexpressions():
    """A node used by several later ones gets the sum of their cotangents before its own
    pullback runs, whatever the order in which the tape reaches it: ``f = u + u²`` with
    ``u = eˣ`` reached both directly and through ``u²``."""
    x = Var(np.array(0.4))
    u = frameworks._taped_exp(x)
    f = u + u * u
    assert frameworks.backward(f, x) == pytest.approx(math.exp(0.4) + 2 * math.exp(0.8), rel=1e-14)
    g = u * u + u
    assert frameworks.backward(g, x) == pytest.approx(math.exp(0.4) + 2 * math.exp(0.8), rel=1e-14)


# ---- Bayesian linear regression ---------------------------------------------------------------
@pytest.fixture(scope="module")
def blr_numpy():
    data = blr.synthetic_data(*blr.SIZES["small"])
    return data, blr.fit("numpy", data)


def test_blr_gradient_and_evidence(blr_numpy):
    (Phi, y, eye, _), _ = blr_numpy
    F = framework("numpy")
    theta = np.array([0.4, 2.9])
    value, grad = F.value_and_grad(blr.log_evidence)(theta, Phi, y, eye)
    alpha, beta = np.exp(theta)
    cov = np.eye(len(y)) / beta + Phi @ Phi.T / alpha  # y ~ N(0, β⁻¹ I + α⁻¹ ΦΦᵀ)
    _, logdet = np.linalg.slogdet(cov)
    dense = -0.5 * (y.T @ np.linalg.solve(cov, y)).item() - 0.5 * logdet - 0.5 * len(y) * math.log(2 * math.pi)
    assert value == pytest.approx(dense, rel=1e-10)
    fd = central_differences(lambda t: F.evaluate(blr.log_evidence)(t, Phi, y, eye), theta)
    assert_close(grad, fd, 1e-5, "log-evidence gradient")


def test_blr_fit_is_mackays_fixed_point(blr_numpy):
    (Phi, y, _, w), r = blr_numpy
    assert blr.mackay_residual(r["theta"], Phi, y) < 1e-4
    assert blr.mackay_residual(r["theta"] + np.array([0.05, 0.0]), Phi, y) > 1e-3  # the check can fail
    alpha, beta = np.exp(r["theta"])
    assert 0.5 * blr.TRUE_BETA < beta < 2 * blr.TRUE_BETA and 0.2 * blr.TRUE_ALPHA < alpha < 5 * blr.TRUE_ALPHA


@pytest.mark.parametrize("name", OTHERS)
def test_blr_frameworks_agree(name, blr_numpy):
    data, ref = blr_numpy
    r = blr.fit(name, data)
    assert_close(r["theta"], ref["theta"], 1e-8, "log α, log β")
    assert r["log_evidence"] == pytest.approx(ref["log_evidence"], rel=1e-10)
    assert_close(r["mean"], ref["mean"], 1e-10, "posterior mean")


# ---- state-space model ------------------------------------------------------------------------
def dense_posterior(theta, ys):
    """Log-likelihood and ``E[x | y]`` from the joint Gaussian of all states and observations:
    ``x = Φ u`` with ``Φ`` block lower triangular (blocks ``A^{t−s}``), ``u ~ N(0, diag(P0, Q, …))``."""
    k = ssm.constants()
    q, r, rho = np.exp(theta[0]), np.exp(theta[1]), np.tanh(theta[2])
    A, Q, R = k.A0 + rho * k.A1, q**2 * k.Q0, r**2 * k.I_p
    T, d = len(ys), 4
    Phi = np.zeros((T * d, T * d))
    for t in range(T):
        for s in range(t + 1):
            Phi[t * d:(t + 1) * d, s * d:(s + 1) * d] = np.linalg.matrix_power(A, t - s)
    D = np.zeros((T * d, T * d))
    for t in range(T):
        D[t * d:(t + 1) * d, t * d:(t + 1) * d] = k.P0 if t == 0 else Q
    Sx = Phi @ D @ Phi.T
    H = np.kron(np.eye(T), k.C)
    Sy = H @ Sx @ H.T + np.kron(np.eye(T), R)
    y = ys.reshape(-1, 1)
    _, logdet = np.linalg.slogdet(Sy)
    loglik = -0.5 * (y.T @ np.linalg.solve(Sy, y)).item() - 0.5 * logdet - 0.5 * len(y) * math.log(2 * math.pi)
    mean = Sx @ H.T @ np.linalg.solve(Sy, y)
    return loglik, mean.reshape(T, d, 1)


@pytest.fixture(scope="module")
def ssm_numpy():
    xs, ys = ssm.synthetic_data(ssm.SIZES["small"])
    return ys, ssm.fit("numpy", ys)


def test_kalman_filter_and_smoother_match_the_joint_gaussian(ssm_numpy):
    ys, r = ssm_numpy
    loglik, mean = dense_posterior(r["theta"], ys)
    assert r["loglik"] == pytest.approx(loglik, rel=1e-10)
    assert_close(r["smoothed"], mean, 1e-9, "RTS smoother vs dense posterior mean")
    F = framework("numpy")
    k = ssm.Constants(*ssm.constants())
    theta = np.array([-0.5, -0.3, 0.8])
    value, grad = F.value_and_grad(ssm.negative_log_likelihood)(theta, ys, k)
    assert -value == pytest.approx(dense_posterior(theta, ys)[0], rel=1e-10)
    fd = central_differences(lambda t: -dense_posterior(t, ys)[0], theta)
    assert_close(grad, fd, 1e-5 * (1 + np.max(np.abs(fd))), "Kalman log-likelihood gradient")


def test_state_space_fit_recovers_the_model(ssm_numpy):
    _, r = ssm_numpy
    q, obs, rho = np.exp(r["theta"][0]), np.exp(r["theta"][1]), np.tanh(r["theta"][2])
    assert 0.05 < q < 1.5 and 0.2 < obs < 1.0 and 0.0 < rho < 1.0


@pytest.mark.parametrize("name", OTHERS)
def test_state_space_frameworks_agree(name, ssm_numpy):
    ys, ref = ssm_numpy
    r = ssm.fit(name, ys)
    assert_close(r["theta"], ref["theta"], 1e-7, "log q, log r, atanh ρ")
    assert r["loglik"] == pytest.approx(ref["loglik"], rel=1e-10)
    assert_close(r["smoothed"], ref["smoothed"], 1e-8, "smoothed means")


# ---- many small GPs ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gps_numpy():
    data = msg.synthetic_data(msg.SIZES["small"])
    return data, msg.fit("numpy", data, repeats=1)


def test_batched_gps_match_one_problem_at_a_time(gps_numpy):
    (sqdist, y, eye, _), r = gps_numpy
    theta0 = msg.start(len(y))
    for b in (0, 7, len(y) - 1):
        ell, s, sigma = np.exp(theta0[:, b, 0, 0])
        K = s**2 * np.exp(-0.5 * sqdist[b] / ell**2) + sigma**2 * eye
        _, logdet = np.linalg.slogdet(K)
        prior = 0.5 * np.sum((theta0[:, b, 0, 0] - np.asarray(msg.PRIOR_MEAN)) ** 2)
        dense = 0.5 * (y[b].T @ np.linalg.solve(K, y[b])).item() + 0.5 * logdet + 0.5 * msg.POINTS * math.log(2 * math.pi) + prior
        assert r["nlp0"][b] == pytest.approx(dense, rel=1e-10)
        one = lambda t, b=b: float(framework("numpy").evaluate(msg.negative_log_posterior)(t, sqdist[b], y[b], eye))  # noqa: E731
        fd = central_differences(one, theta0[:, b])
        assert_close(r["grad0"][:, b], fd, 1e-5 * (1 + np.max(np.abs(fd))), f"gradient of problem {b}")


def test_batched_newton_converges(gps_numpy):
    (sqdist, y, eye, _), r = gps_numpy
    assert r["converged"] == len(y)
    assert np.all(r["nlp"] <= r["nlp0"] + 1e-12)
    _, grad = framework("numpy").value_and_grad(msg.total)(r["theta"], sqdist, y, eye)
    assert np.max(np.abs(grad)) < 1e-7


@pytest.mark.parametrize("name", OTHERS)
def test_batched_gps_frameworks_agree(name, gps_numpy):
    data, ref = gps_numpy
    r = msg.fit(name, data, repeats=1)
    assert_close(r["nlp0"], ref["nlp0"], 1e-9, "nlp at the start")
    assert_close(r["grad0"], ref["grad0"], 1e-8, "gradient at the start")
    assert_close(r["theta"], ref["theta"], 1e-7, "fitted θ")
    assert_close(r["nlp"], ref["nlp"], 1e-9, "fitted nlp")


# ---- the command lines ------------------------------------------------------------------------
@pytest.mark.parametrize("module", [gp_regression, blr, ssm, msg], ids=lambda m: m.__name__)
def test_command_line(module, capsys):
    module.main(["--size", "small", "--frameworks", "numpy"])
    text = capsys.readouterr().out
    assert "\nnumpy " in text and "largest difference between frameworks" in text
    with pytest.raises(SystemExit, match="unknown framework"):
        module.main(["--size", "small", "--frameworks", "numpy", "tensorflow"])


def test_disagreement_is_an_error():
    results = {"numpy": {"theta": np.zeros(2)}, "other": {"theta": np.array([0.0, 1e-3])}}
    with pytest.raises(SystemExit, match="disagree on theta"):
        frameworks.check_agreement(results, {"theta": 1e-4}, quiet)
    assert frameworks.check_agreement(results, {"theta": 1e-2}, quiet)["theta"] == pytest.approx(1e-3)
