#!/usr/bin/env bash
# The whole test suite on a fresh machine: builds the environments it needs (and the compiled
# kernel layer in them), then runs xlinalg's tests and the conformance suite twice: with the
# compiled kernel layer (XLINALG_KERNELS=compiled: a layer that failed to build is an error
# here) and with the pure Array-API rules (XLINALG_KERNELS=python). Main environment: NumPy 2,
# array-api-strict, PyTorch, JAX; MXNet tests in their own environment (NumPy 1.23).
# Then the kernels' baseline builds (XLINALG_ISA=baseline) through tests/test_lapack.py.
# Tests run on every CPU (pytest-xdist); XLINALG_TEST_WORKERS=1 runs them in one process.
# Last, the documentation site: strict build and the headless-browser check (scripts/docs.sh).
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
py="$(main_env)"
mxpy="$(mxnet_env)"
export PYTHONHASHSEED=0 XLA_FLAGS="${XLA_FLAGS:---xla_force_host_platform_device_count=1}"
workers="${XLINALG_TEST_WORKERS:-auto}"
status=0
echo "== lint (ruff)"
"$py" -m ruff check "$ROOT" || status=$?
# The pure-rules pass leaves out the JAX tests: for the operators without JAX kernels they would
# repeat the compiled pass exactly, second-order derivatives differentiate the pure rules in both
# passes, and for the operators with JAX kernels tests/jax_adapter/test_lapack_jax.py compares the
# kernels with the pure rules in every transformation (values, grad, jvp, vmap, jit, hessian).
for kernels in compiled python; do
  skip=()
  [ "$kernels" = python ] && skip=(--ignore=tests/jax_adapter)
  echo "== MXNet environment (numpy 1.23, mxnet 1.9.1), XLINALG_KERNELS=$kernels"
  XLINALG_KERNELS=$kernels "$mxpy" -m pytest -q -p no:cacheprovider -n "$workers" tests "$@" || status=$?
  echo "== main environment (numpy 2, array-api-strict, torch, jax), XLINALG_KERNELS=$kernels"
  XLINALG_KERNELS=$kernels "$py" -m pytest -q -p no:cacheprovider -n "$workers" tests "${skip[@]}" "$@" || status=$?
done
# Kernels with an AVX2 build run it wherever the CPU has AVX2 and FMA; XLINALG_ISA=baseline runs
# their baseline build (what other CPUs run) through the kernel-against-rule comparisons.
echo "== main environment, XLINALG_KERNELS=compiled XLINALG_ISA=baseline: tests/test_lapack.py"
XLINALG_KERNELS=compiled XLINALG_ISA=baseline "$py" -m pytest -q -p no:cacheprovider -n "$workers" tests/test_lapack.py "$@" || status=$?
echo "== documentation site: strict build, then every page in headless Chromium"
bash "$ROOT/scripts/docs.sh" check || status=$?
exit $status
