#!/usr/bin/env bash
# The main job on a fresh machine: builds the environments, then fits the same Gaussian
# process model in every installed framework (NumPy, PyTorch, JAX; MXNet in its own
# environment) and checks that they agree.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
py="$(main_env)"
mxpy="$(mxnet_env)"
echo "== main environment"
"$py" examples/gp_regression.py --frameworks numpy torch jax "$@"
echo "== MXNet environment"
"$mxpy" examples/gp_regression.py --frameworks numpy mxnet "$@"
