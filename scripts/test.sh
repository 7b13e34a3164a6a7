#!/usr/bin/env bash
# The whole test suite on a fresh machine: builds the environments it needs, then runs
# xlinalg's tests and the conformance suite (main environment: NumPy 2, array-api-strict,
# PyTorch, JAX), and the MXNet tests in their own environment (NumPy 1.23).
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
py="$(main_env)"
mxpy="$(mxnet_env)"
export PYTHONHASHSEED=0 XLA_FLAGS="${XLA_FLAGS:---xla_force_host_platform_device_count=1}"
status=0
echo "== lint (ruff)"
"$py" -m ruff check "$ROOT" || status=$?
echo "== MXNet environment (numpy 1.23, mxnet 1.9.1)"
"$mxpy" -m pytest -q -p no:cacheprovider tests "$@" || status=$?
echo "== main environment (numpy 2, array-api-strict, torch, jax)"
"$py" -m pytest -q -p no:cacheprovider tests "$@" || status=$?
exit $status
