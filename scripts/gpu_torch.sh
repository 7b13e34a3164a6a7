#!/usr/bin/env bash
# PyTorch on a CUDA GPU, within a few minutes: the torch tests (tests/torch_adapter/test_cuda.py runs
# only here), the conformance suite on CUDA tensors, and the benchmark on the GPU.
#   scripts/gpu_torch.sh [PYTHON]     (default: the main environment built by scripts/env.sh)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ $# -ge 1 ]; then
  py="$1"
else
  source "$ROOT/scripts/env.sh"
  py="$(main_env)"
fi
"$py" - <<'PY'
import sys, torch
if not torch.cuda.is_available():
    sys.exit("no CUDA device visible to torch: nothing to run")
print("torch", torch.__version__, "on", torch.cuda.get_device_name(0))
PY
status=0
echo "== tests/torch_adapter/test_cuda.py: values, gradients, double backward, errors on CUDA tensors"
"$py" -m pytest -q -p no:cacheprovider tests/torch_adapter/test_cuda.py || status=$?
echo "== conformance suite, CUDA tensors"
"$py" -m xlinalg_conformance --backend xlinalg_conformance.backends.torch:CUDA_BACKEND || status=$?
echo "== benchmark on the GPU (forward+backward, xlinalg vs torch.linalg)"
"$py" benchmarks/bench_torch.py --device cuda --quick || status=$?
exit $status
