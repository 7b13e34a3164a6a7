#!/usr/bin/env bash
# The main job on a fresh machine: builds the environments, then fits the same Gaussian
# process model in every installed framework (NumPy, PyTorch, JAX; MXNet in its own
# environment) and checks that they agree.
#
#   bash scripts/demo.sh [ARGS...]                  the GP example (examples/gp_regression.py)
#   bash scripts/demo.sh --example NAME [ARGS...]   the example examples/NAME.py
#   bash scripts/demo.sh --example all [ARGS...]    every example, then a summary
#
# Examples: gp_regression, bayesian_linear_regression, state_space_model, many_small_gps.
# ARGS go to each example, e.g. `--size small|default|full` (default: a few seconds per
# framework; full: the sizes of the paper's experiments). Each example runs in the main
# environment (numpy torch jax) and in the MXNet environment (numpy mxnet); each run exits
# non-zero when its frameworks disagree, and so does this script when any run failed.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

EXAMPLES=(gp_regression bayesian_linear_regression state_space_model many_small_gps)
example=""
case "${1:-}" in
  --example) example="${2:?--example needs NAME or all}"; shift 2 ;;
  --example=*) example="${1#--example=}"; shift ;;
esac

py="$(main_env)"
mxpy="$(mxnet_env)"

if [ -z "$example" ]; then  # the default: the GP example, as it always was
  echo "== main environment"
  "$py" examples/gp_regression.py --frameworks numpy torch jax "$@"
  echo "== MXNet environment"
  "$mxpy" examples/gp_regression.py --frameworks numpy mxnet "$@"
  exit 0
fi

if [ "$example" = all ]; then
  names=("${EXAMPLES[@]}")
elif [[ " ${EXAMPLES[*]} " == *" $example "* ]]; then
  names=("$example")
else
  echo "unknown example '$example'; choose one of: ${EXAMPLES[*]} all" >&2
  exit 2
fi

summary=()
status=0
run_one() {  # run_one NAME ENV-LABEL PYTHON FRAMEWORKS...
  local name="$1" label="$2" python="$3" start tenths rc=0 line
  shift 3
  echo "== $name — $label environment"
  start=$(date +%s%N)
  "$python" "examples/$name.py" --frameworks "$@" "${ARGS[@]}" || rc=$?
  tenths=$(( ($(date +%s%N) - start) / 100000000 ))
  line="$(printf '%-28s %-7s %-6s %4d.%d s' "$name" "$label" "$([ $rc -eq 0 ] && echo ok || echo FAILED)" $((tenths / 10)) $((tenths % 10)))"
  summary+=("$line")
  [ $rc -eq 0 ] || status=1
}

ARGS=("$@")
for name in "${names[@]}"; do
  run_one "$name" main "$py" numpy torch jax
  run_one "$name" MXNet "$mxpy" numpy mxnet
done
echo "== summary (each line: the frameworks of one environment agreed, or not)"
printf '%s\n' "${summary[@]}"
exit $status
