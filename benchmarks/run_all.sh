#!/usr/bin/env bash
# Runs every benchmark with 1 thread and with 2 threads, each run in its own process, writes
# <out>/<framework>-<threads>t.json, then benchmarks/plot.py: the SVG plots in <out> and the
# generated sections of the page.
#
#   bash benchmarks/run_all.sh                 all four, 1 and 2 threads (about 20-25 minutes on
#                                              2 quiet cores; n = 2048 with 1 thread only)
#   bash benchmarks/run_all.sh torch jax       only these (numpy, torch, jax, mxnet); the plots
#                                              and tables use every JSON file in <out>
#   bash benchmarks/run_all.sh --threads 1     only these thread counts
#   bash benchmarks/run_all.sh --quick         3 rounds per median instead of 5 (a smoke run)
#   bash benchmarks/run_all.sh --sizes 8 32    other matrix orders (of 8, 32, 256, 1024, 2048),
#                                              at every thread count
#   bash benchmarks/run_all.sh --ops potrf gp_nll   some operators (default: all, and the GP)
#   bash benchmarks/run_all.sh --out /tmp/b --page /tmp/b/page.md   results and page elsewhere
#                                              (copy docs/benchmarks.md there first)
#   bash benchmarks/run_all.sh --plot-only     only the plots and the page, from the JSON files
#
# Builds .venv, .venv-mxnet and .venv-docs (matplotlib) on first use, like the other scripts;
# BENCH_PYTHON, BENCH_PYTHON_MXNET, BENCH_PYTHON_PLOT name other interpreters to use instead
# (environments with the same packages, left as they are).
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
cd "$ROOT"

frameworks=() threads=(1 2) sizes=() ops=() rounds=() plot_only=0 out=docs/benchmarks page=docs/benchmarks.md
list() { local -n into=$1; into=(); while [ $# -gt 2 ] && [[ "$3" != --* ]] && [[ ! "$3" =~ ^(numpy|torch|jax|mxnet)$ ]]; do into+=("$3"); shift; done; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) rounds=(--quick) ;;
    --plot-only) plot_only=1 ;;
    --threads) list threads "$@"; shift ${#threads[@]} ;;
    --sizes) list sizes "$@"; shift ${#sizes[@]} ;;
    --ops) list ops "$@"; shift ${#ops[@]} ;;
    --out) out="$2"; shift ;;
    --page) page="$2"; shift ;;
    numpy|torch|jax|mxnet) frameworks+=("$1") ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_all.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ ${#frameworks[@]} -gt 0 ] || frameworks=(numpy torch jax mxnet)
mkdir -p "$out"

# The sizes of a run: --sizes, else every n with 1 thread (the targets' thread count) and all
# but n = 2048 with more (the time budget: n = 2048 is most of a run's time).
sizes_for() { if [ ${#sizes[@]} -gt 0 ]; then echo "${sizes[*]}"; elif [ "$1" = 1 ]; then echo 8 32 256 1024 2048; else echo 8 32 256 1024; fi; }

elapsed() { echo "$(( $(date +%s) - $1 )) s"; }
if [ "$plot_only" = 0 ]; then
  py="${BENCH_PYTHON:-}"
  [ -n "$py" ] || py="$(main_env)"
  all=$(date +%s)
  for t in "${threads[@]}"; do
    for fw in "${frameworks[@]}"; do
      start=$(date +%s)
      echo "== $fw, $t thread(s)" >&2
      # shellcheck disable=SC2046  # the sizes are words
      args=("${rounds[@]}" --threads "$t" --sizes $(sizes_for "$t") --json "$out/$fw-${t}t.json")
      [ ${#ops[@]} -eq 0 ] || args+=(--ops "${ops[@]}")
      case "$fw" in
        mxnet) "${BENCH_PYTHON_MXNET:-$(mxnet_env)}" benchmarks/bench_mxnet.py "${args[@]}" ;;
        *) "$py" "benchmarks/bench_$fw.py" "${args[@]}" ;;
      esac
      echo "== $fw, $t thread(s): $(elapsed "$start")" >&2
    done
  done
  echo "== all runs: $(elapsed "$all")" >&2
fi

plot_py="${BENCH_PYTHON_PLOT:-}"
if [ -z "$plot_py" ]; then
  ensure_env .venv-docs requirements/docs.txt
  plot_py="$ROOT/.venv-docs/bin/python"
fi
echo "== plots and $page" >&2
"$plot_py" benchmarks/plot.py --results "$out" --page "$page"
