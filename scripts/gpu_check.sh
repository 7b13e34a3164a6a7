#!/usr/bin/env bash
# The GPU check, one command on a machine with a CUDA GPU (a few minutes; no network needed):
#   1. builds the kernel layers in place for the GPU present (nvcc; XLINALG_CUDA_ARCHS); a failed
#      build is reported and the check goes on with what there is (NVRTC, the pure rules); what
#      is built on first use is built then (the frameworks' bindings, NVRTC's kernels),
#   2. the GPU benchmark (benchmarks/bench_gpu.py) against torch, JAX and CuPy, each cell's values
#      checked against float64: <out>/gpu-benchmark.json and <out>/gpu-benchmark.md, rewritten
#      after every workload,
#   3. the CUDA tests: every GPU rule against the pure rules, failures per batch entry, the
#      library and its exports, torch on CUDA tensors, JAX on GPU arrays (values, gradients),
#   4. the conformance suite on CUDA tensors (torch), JAX GPU arrays and CuPy arrays for the
#      operators with GPU kernels.
# The results come first because GPU time is scarce: each step on a GPU has a time limit (a step
# that hangs cannot starve the ones after it), and <out>/steps.txt records when each began.
#
#   bash scripts/gpu_check.sh [--out DIR] [--python PYTHON]
#   bash scripts/gpu_check.sh --dry [--out DIR]   no GPU: the same steps on the CPU (no build,
#                                                 the main environment, tiny sizes, no time
#                                                 limits), to check the script itself
#
# It uses the interpreter it is given (default: python3 on the GPU machine, whose torch, JAX and
# CuPy it measures; the main environment with --dry) and installs nothing from the network:
# where array-api-compat is missing, put its wheel in .whl/ (pip download array-api-compat) and
# it is unpacked into a temporary folder on the path.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
dry=0 out="${OUT:-$ROOT/gpu-check}" py=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry) dry=1 ;;
    --out) out="$2"; shift ;;
    --python) py="$2"; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$out"
if [ -z "$py" ]; then
  if [ "$dry" = 1 ]; then source "$ROOT/scripts/env.sh"; py="$(main_env)"; else py=python3; fi
fi
started=$(date +%s)
# torch, JAX and CuPy share the GPU in one process: JAX takes memory as it needs it, not 75 % of
# the GPU up front
export XLA_PYTHON_CLIENT_PREALLOCATE=false
: > "$out/steps.txt"
step() { echo "== [$(( $(date +%s) - started )) s] $*" | tee -a "$out/steps.txt"; }
# limit SECONDS COMMAND...: on a GPU, COMMAND stopped after SECONDS (exit 124); dry, no limit
limit() {
  local seconds="$1"; shift
  if [ "$dry" = 0 ]; then timeout -k 10 "$seconds" "$@"; else "$@"; fi
}

if ! "$py" -c "import array_api_compat" 2>/dev/null; then
  wheel=$(ls "$ROOT"/.whl/array_api_compat-*.whl 2>/dev/null | head -1 || true)
  [ -n "$wheel" ] || { echo "gpu_check.sh: $py lacks array-api-compat and .whl/ holds no wheel of it" >&2; exit 1; }
  site="$(mktemp -d)"
  "$py" -m pip install -q --no-index --no-deps --target "$site" "$wheel"
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi

status=0
step "environment"
"$py" - "$dry" <<'PY'
import sys
import torch
dry = sys.argv[1] == "1"
print("python", sys.version.split()[0], "| torch", torch.__version__, "| CUDA", torch.version.cuda)
if not dry and not torch.cuda.is_available():
    sys.exit("gpu_check.sh: torch sees no CUDA device (use --dry on a machine without one)")
if torch.cuda.is_available():
    print("device:", torch.cuda.get_device_name(0), "capability", torch.cuda.get_device_capability(0))
for name in ("jax", "cupy"):
    try:
        print(name, __import__(name).__version__)
    except Exception as exc:
        print(name, "unavailable:", exc)
PY

if [ "$dry" = 0 ]; then
  step "build for the GPU present"
  cap=$("$py" -c "import torch; print(''.join(map(str, torch.cuda.get_device_capability(0))))")
  export XLINALG_CUDA_ARCHS="${XLINALG_CUDA_ARCHS:-$cap}"
  # in place, no dependency resolution (nothing can be fetched here); nvcc gets most of the limit
  if ! XLINALG_NVCC_TIMEOUT="${XLINALG_NVCC_TIMEOUT:-240}" limit 300 \
      "$py" -m pip install -q --no-deps --no-build-isolation --no-index -e "$ROOT" 2>&1 | tee "$out/build.txt"; then
    echo "gpu_check.sh: the build failed (build.txt); going on with the layers already built, NVRTC and the pure rules" >&2
    status=1
  fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
step "compiled layers"
# what is built on first use (the torch node, JAX's CPU and CUDA handlers and, where the nvcc build
# is missing, the run-time kernels: NVRTC, minutes) built now, once: not inside the benchmark's
# cells and its time limit, nor in every test process
limit 420 "$py" - <<'PY' 2>&1 | tee "$out/config.txt" || status=1
import importlib

for name in ("torch", "jax"):  # show_config builds the bindings of the frameworks imported
    try:
        importlib.import_module(name)
    except ImportError as exc:
        print(name, "unavailable:", exc)
import xlinalg
from xlinalg.cuda.rules import cuda_entries, library_entries
from xlinalg.cuda.runtime import runtime_reason

entries = cuda_entries(0)
xlinalg.show_config()
print("GPU entries on device 0:", type(entries).__name__ if entries else f"none, the pure rules run (run-time build: {runtime_reason()})")
if library_entries() is not None and library_entries().missing_code():
    print("the CUDA library has no code for:", library_entries().missing_code())
try:  # the local memory the driver reserves at syevd's first launch (its 4.3 KB per thread in float64)
    import torch

    if entries is not None and torch.cuda.is_available():
        import xlinalg.torch

        a = torch.eye(8, dtype=torch.float64, device="cuda").expand(64, 8, 8).contiguous()
        free, pool = torch.cuda.mem_get_info()[0], torch.cuda.memory_reserved()
        xlinalg.torch.syevd(a)
        torch.cuda.synchronize()
        taken = free - torch.cuda.mem_get_info()[0] - (torch.cuda.memory_reserved() - pool)  # less torch's own pool
        print(f"device memory the first float64 syevd launch took, besides torch's pool: {taken / 2**20:.0f} MiB")
except Exception as exc:
    print("device memory of syevd's first launch: not measured:", exc)
PY

step "benchmark"
bench=()
[ "$dry" = 1 ] && bench=(--dry)
limit 240 "$py" benchmarks/bench_gpu.py "${bench[@]}" --json "$out/gpu-benchmark.json" --markdown "$out/gpu-benchmark.md" \
  2>&1 | tee "$out/benchmark.txt" || status=1

step "CUDA tests"
# on the GPU machine in parallel processes where pytest-xdist is there (they share the GPU)
workers=()
if [ "$dry" = 0 ] && "$py" -c "import xdist" 2>/dev/null; then workers=(-n 8); fi
limit 300 "$py" -m pytest -q -p no:cacheprovider "${workers[@]}" tests/test_cuda_build.py tests/test_cuda_runtime.py tests/test_cuda_rules.py tests/torch_adapter/test_cuda.py \
  tests/torch_adapter/test_cuda_trace.py tests/jax_adapter/test_cuda_lowering.py tests/jax_adapter/test_cuda_values.py \
  2>&1 | tee "$out/tests.txt" || status=1

step "conformance suite on CUDA tensors (operators with GPU kernels)"
backend=xlinalg_conformance.backends.torch:CUDA_BACKEND
[ "$dry" = 1 ] && backend=torch
ops=$("$py" -c "from xlinalg.cuda.rules import RULES; print(' '.join(RULES))")
# shellcheck disable=SC2086
limit 120 "$py" -m xlinalg_conformance --backend "$backend" --ops $ops --json "$out/conformance.json" \
  2>&1 | tee "$out/conformance.txt" || status=1

if [ "$dry" = 0 ] && "$py" -c "import jax, sys; sys.exit(jax.default_backend() != 'gpu')" 2>/dev/null; then
  step "conformance suite on JAX GPU arrays"
  # shellcheck disable=SC2086
  limit 120 "$py" -m xlinalg_conformance --backend jax --ops $ops --json "$out/conformance-jax.json" \
    2>&1 | tee "$out/conformance-jax.txt" || status=1
fi
if "$py" -c "import cupy" 2>/dev/null && [ "$dry" = 0 ]; then
  step "conformance suite on CuPy arrays (the NumPy-style API)"
  # shellcheck disable=SC2086
  limit 120 "$py" -m xlinalg_conformance --backend cupy --ops $ops --json "$out/conformance-cupy.json" \
    2>&1 | tee "$out/conformance-cupy.txt" || status=1
fi

step "done (status $status): results in $out"
exit $status
