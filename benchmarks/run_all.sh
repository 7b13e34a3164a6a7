#!/usr/bin/env bash
# Runs every benchmark with one thread, writes docs/benchmarks/<framework>.json, then
# benchmarks/plot.py: the SVG plots in docs/benchmarks/ and the generated sections of
# docs/benchmarks.md.
#
#   bash benchmarks/run_all.sh                    all four at the quick size (3 rounds per
#                                                 median; about 10 minutes on 2 cores)
#   bash benchmarks/run_all.sh torch jax          only these (numpy, torch, jax, mxnet); the
#                                                 plots use every JSON file in docs/benchmarks/
#   bash benchmarks/run_all.sh --full             7 rounds per median (the scripts' default)
#   bash benchmarks/run_all.sh --sizes 8 32 256   other matrix orders (of 8, 32, 256, 1024)
#   bash benchmarks/run_all.sh --plot-only        only the plots and the page, from the JSON files
#
# Builds .venv, .venv-mxnet and .venv-docs (matplotlib) on first use, like the other scripts;
# BENCH_PYTHON, BENCH_PYTHON_MXNET, BENCH_PYTHON_PLOT name other interpreters to use instead
# (environments with the same packages, left as they are).
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
cd "$ROOT"

frameworks=() sizes=(8 32 256 1024) rounds=(--quick) jax_timeout=30 plot_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --full) rounds=() jax_timeout=120 ;;
    --plot-only) plot_only=1 ;;
    --sizes) sizes=(); while [ $# -gt 1 ] && [[ "$2" =~ ^[0-9]+$ ]]; do sizes+=("$2"); shift; done ;;
    numpy|torch|jax|mxnet) frameworks+=("$1") ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_all.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ ${#frameworks[@]} -gt 0 ] || frameworks=(numpy torch jax mxnet)

# One thread everywhere: on a small shared machine, multi-threaded BLAS calls wait on each
# other's threads and the times swing by factors of 2-10 between runs.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
out=docs/benchmarks
mkdir -p "$out"
common=("${rounds[@]}" --sizes "${sizes[@]}")

elapsed() { echo "$(( $(date +%s) - $1 )) s"; }
if [ "$plot_only" = 0 ]; then
  py="${BENCH_PYTHON:-}"
  [ -n "$py" ] || py="$(main_env)"
  for fw in "${frameworks[@]}"; do
    start=$(date +%s)
    echo "== $fw" >&2
    case "$fw" in
      numpy) "$py" benchmarks/bench_numpy.py "${common[@]}" --json "$out/numpy.json" ;;
      torch) "$py" benchmarks/bench_torch.py "${common[@]}" --threads 1 --json "$out/torch.json" ;;
      # each case in a child process; one that hangs in XLA (batched triangular solves, see
      # docs/jax.md; more often on a loaded machine) is killed and retried, up to 4 attempts
      jax) "$py" benchmarks/bench_jax.py "${common[@]}" --timeout "$jax_timeout" --tries 4 --json "$out/jax.json" ;;
      mxnet) "${BENCH_PYTHON_MXNET:-$(mxnet_env)}" benchmarks/bench_mxnet.py "${common[@]}" --json "$out/mxnet.json" ;;
    esac
    echo "== $fw: $(elapsed "$start")" >&2
  done
fi

plot_py="${BENCH_PYTHON_PLOT:-}"
if [ -z "$plot_py" ]; then
  ensure_env .venv-docs requirements/docs.txt
  plot_py="$ROOT/.venv-docs/bin/python"
fi
echo "== plots and docs/benchmarks.md" >&2
"$plot_py" benchmarks/plot.py --results "$out" --page docs/benchmarks.md
