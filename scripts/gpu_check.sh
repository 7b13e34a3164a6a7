#!/usr/bin/env bash
# The GPU check, one command on a machine with a CUDA GPU (a few minutes; no network needed):
#   1. builds the kernel layers in place for the GPU present (setup.py build_ext --inplace: nvcc;
#      XLINALG_CUDA_ARCHS); a failed build is reported and the check goes on with what there is
#      (NVRTC, the pure rules); what is built on first use is built then (the frameworks'
#      bindings, NVRTC's kernels),
#   2. the GPU benchmark (benchmarks/bench_gpu.py) against torch, JAX and CuPy, each cell's values
#      checked against float64: <out>/gpu-benchmark.json and <out>/gpu-benchmark.md, rewritten
#      after every workload,
#   3. the conformance suite on CUDA tensors (torch), CuPy arrays and JAX GPU arrays for the
#      operators with GPU kernels,
#   4. the CUDA tests: every GPU rule against the pure rules, failures per batch entry, the
#      library and its exports, torch on CUDA tensors, JAX on GPU arrays (values, gradients).
# The results come first because GPU time is scarce: on a GPU the whole check ends within
# GPU_CHECK_SECONDS (default 520) of its start, each step within its own limit and what is left
# of that (a step that hangs cannot starve the ones after it; one with no time left is skipped and
# says so); <out>/steps.txt records when each began. The status is 1 when a step failed or was
# skipped, or when no GPU kernels of this package ran (no library built and no run-time build).
#
#   bash scripts/gpu_check.sh [--out DIR] [--python PYTHON]
#   bash scripts/gpu_check.sh --dry [--out DIR]   no GPU: the same steps on the CPU (no build,
#                                                 the main environment, tiny sizes, no time
#                                                 limits), to check the script itself
#
# It uses the interpreter it is given (default: python3 on the GPU machine, whose torch, JAX and
# CuPy it measures; the main environment with --dry) and installs nothing, from the network or
# otherwise: where array-api-compat (1.11 or later) or setuptools (77 or later, for the build) is
# missing, put its wheel in .whl/ (pip download --no-deps -d .whl array-api-compat setuptools) and
# it is unpacked into a temporary folder on the path.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
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
out="$(cd "$out" && pwd)"
cd "$ROOT"
if [ -z "$py" ]; then
  if [ "$dry" = 1 ]; then source "$ROOT/scripts/env.sh"; py="$(main_env)"; else py=python3; fi
fi
started=$(date +%s) budget="${GPU_CHECK_SECONDS:-520}"
# torch, JAX and CuPy share the GPU in one process: JAX takes memory as it needs it, not 75 % of
# the GPU up front
export XLA_PYTHON_CLIENT_PREALLOCATE=false
# on a GPU, what is built on first use goes to a cache of this run's own (a home folder may not
# be writable there); dry, the caller's
[ "$dry" = 1 ] || export XLINALG_CACHE_DIR="${XLINALG_CACHE_DIR:-$(mktemp -d)}"
: > "$out/steps.txt"
source "$ROOT/scripts/gpu_check_helpers.sh"
trap 'rc=$?; step "ended early (exit $rc): see the step above"' ERR

provide array_api_compat 1.11
# the conformance suite's package (conformance/, installed as xlinalg_conformance) without
# installing the project
links="$(mktemp -d)"
ln -s "$ROOT/conformance" "$links/xlinalg_conformance"
export PYTHONPATH="$ROOT:$links${PYTHONPATH:+:$PYTHONPATH}"

status=0
step "environment"
"$py" - "$dry" <<'PY' 2>&1 | tee "$out/environment.txt"
import sys
dry = sys.argv[1] == "1"
print("python", sys.version.split()[0])
gpu = False
for name in ("torch", "jax", "cupy"):
    try:
        module = __import__(name)
    except Exception as exc:
        print(name, "unavailable:", exc)
        continue
    print(name, module.__version__)
    try:
        if name == "torch" and module.cuda.is_available():
            print("  CUDA", module.version.cuda, "| device:", module.cuda.get_device_name(0), "capability", module.cuda.get_device_capability(0))
            gpu = True
        elif name == "torch":
            print("  no CUDA device (CUDA build:", module.version.cuda, ")")
        if name == "jax":
            print("  backend:", module.default_backend(), module.devices())
        if name == "cupy":
            count = module.cuda.runtime.getDeviceCount()
            print("  devices:", count)
            gpu = gpu or count > 0
    except Exception as exc:
        print("  no GPU:", exc)
if not dry and not gpu:
    sys.exit("gpu_check.sh: neither torch nor CuPy sees a CUDA device (use --dry on a machine without one)")
PY

if [ "$dry" = 0 ]; then
  step "build for the GPU present"
  # sm_XY of device 0, for nvcc (XLINALG_CUDA_ARCHS set by the caller wins)
  cap=$("$py" - <<'PY' 2>/dev/null || true
try:
    import torch
    print("sm_%d%d" % torch.cuda.get_device_capability(0))
except Exception:
    import cupy
    print("sm_" + cupy.cuda.Device(0).compute_capability)
PY
)
  export XLINALG_CUDA_ARCHS="${XLINALG_CUDA_ARCHS:-$cap}"
  # setuptools for the build, and for torch's extension builder (the torch node) in later steps
  provide setuptools 77 > "$out/build.txt" 2>&1 || status=1
  # in place, nothing installed; nvcc gets most of the limit. setup.py reports a failed nvcc build
  # or a failed C++ extension as a warning (the package works without them): failures here
  if ! XLINALG_NVCC_TIMEOUT="${XLINALG_NVCC_TIMEOUT:-240}" limit 300 "$py" setup.py build_ext --inplace 2>&1 | tee -a "$out/build.txt" \
      || grep -qE 'the CUDA library was not built \(|building extension ".*" failed' "$out/build.txt"; then
    echo "gpu_check.sh: the build failed (build.txt); going on with the layers already built, NVRTC and the pure rules" >&2
    status=1
  fi
fi
step "compiled layers"
# what is built on first use (the torch node, JAX's CPU and CUDA handlers and, where the nvcc build
# is missing, the run-time kernels: NVRTC, minutes) built now, once: not inside the benchmark's
# cells and its time limit, nor in every test process. On a GPU, a failure when no GPU kernels of
# this package run there (neither the library nor the run-time build).
limit 420 "$py" - "$dry" <<'PY' 2>&1 | tee "$out/config.txt" || status=1
import importlib
import sys

for name in ("torch", "jax"):  # show_config builds the bindings of the frameworks imported
    try:
        importlib.import_module(name)
    except ImportError as exc:
        print(name, "unavailable:", exc)
import xlinalg
from xlinalg.cuda.rules import cuda_entries
from xlinalg.cuda.runtime import runtime_reason

dry = sys.argv[1] == "1"
entries = cuda_entries(0)
xlinalg.show_config()
print("GPU entries on device 0:", type(entries).__name__ if entries else f"none, the pure rules run (run-time build: {runtime_reason()})")
try:  # the local memory the driver reserves at syevd's first launch (about 4.5 KB per thread in float64)
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
if not dry and entries is None:
    sys.exit("gpu_check.sh: no GPU kernels of this package run on device 0: what follows measures the pure rules")
PY

step "benchmark"
bench=()
[ "$dry" = 1 ] && bench=(--dry)
limit 200 "$py" benchmarks/bench_gpu.py ${bench[@]+"${bench[@]}"} --json "$out/gpu-benchmark.json" --markdown "$out/gpu-benchmark.md" \
  2>&1 | tee "$out/benchmark.txt" || status=1

# conformance WHAT BACKEND SECONDS NAME: the conformance suite on BACKEND for the operators with GPU
# kernels, a line per operator × check as it ends, into <out>/NAME.txt and <out>/NAME.json
conformance() {
  step "conformance suite on $1"
  # shellcheck disable=SC2086
  limit "$3" "$py" -m xlinalg_conformance -v --backend "$2" --ops $ops --json "$out/$4.json" 2>&1 | tee "$out/$4.txt" || status=1
}
if ! ops=$("$py" -c "from xlinalg.cuda.rules import RULES; print(' '.join(RULES))"); then
  echo "gpu_check.sh: the GPU rules do not import: no conformance suite" | tee -a "$out/steps.txt" >&2
  status=1 ops=""
fi
if [ -n "$ops" ]; then
  backend=xlinalg_conformance.backends.torch:CUDA_BACKEND
  [ "$dry" = 1 ] && backend=torch
  conformance "CUDA tensors (operators with GPU kernels)" "$backend" 90 conformance
  if "$py" -c "import cupy" 2>/dev/null && [ "$dry" = 0 ]; then
    conformance "CuPy arrays (the NumPy-style API)" cupy 60 conformance-cupy
  fi
  if [ "$dry" = 0 ] && "$py" -c "import jax, sys; sys.exit(jax.default_backend() != 'gpu')" 2>/dev/null; then
    conformance "JAX GPU arrays" jax 60 conformance-jax
  fi
fi

step "CUDA tests"
# on the GPU machine in parallel processes where pytest-xdist is there (they share the GPU); a line
# per test as it ends, so that a run stopped at its limit still shows how far it got
workers=()
if [ "$dry" = 0 ] && "$py" -c "import xdist" 2>/dev/null; then workers=(-n 8); fi
limit 300 "$py" -m pytest -v -ra -p no:cacheprovider ${workers[@]+"${workers[@]}"} tests/test_cuda_build.py tests/test_cuda_runtime.py \
  tests/test_cuda_rules.py tests/torch_adapter/test_cuda.py tests/torch_adapter/test_cuda_trace.py tests/jax_adapter/test_cuda_lowering.py \
  tests/jax_adapter/test_cuda_values.py 2>&1 | tee "$out/tests.txt" || status=1

step "done (status $status): results in $out"
exit $status
