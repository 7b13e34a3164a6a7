# The GPU check's helpers (scripts/gpu_check.sh), sourced: they read its settings dry (1: no time
# limits), py (the interpreter), out (the results' folder), started and budget (the check's start,
# in seconds since the epoch, and the seconds it may take on a GPU), ROOT (the repository).

# step TEXT: TEXT, with the seconds since the start, on the terminal and in <out>/steps.txt
step() { echo "== [$(( $(date +%s) - started )) s] $*" | tee -a "$out/steps.txt"; }
# limit SECONDS COMMAND...: on a GPU, COMMAND interrupted (SIGINT: pytest still prints its
# summary) after SECONDS or at the end of the budget, whichever comes first (exit 124), killed 10 s
# later; not started when less than 20 s are left (exit 124 too); dry, no limit
limit() {
  local seconds="$1" left; shift
  if [ "$dry" = 1 ]; then "$@"; return; fi
  left=$(( budget - ($(date +%s) - started) - 10 ))
  [ "$left" -lt "$seconds" ] && seconds=$left
  if [ "$seconds" -lt 20 ]; then
    echo "gpu_check.sh: skipped, the budget is spent (GPU_CHECK_SECONDS=$budget)" | tee -a "$out/steps.txt" >&2
    return 124
  fi
  timeout -s INT -k 10 "$seconds" "$@"
}
# provide MODULE VERSION: MODULE importable at VERSION (major.minor) or later, else its wheel from
# .whl/ unpacked (a wheel is a zip file: no pip needed) into a folder put first on the path
site=""
provide() {
  local module="$1" minimum="$2" wheel
  "$py" - "$module" "$minimum" 2>/dev/null <<'PY' && return 0
import importlib, re, sys
have = re.match(r"(\d+)\.(\d+)", importlib.import_module(sys.argv[1]).__version__).groups()
sys.exit([int(x) for x in have] < [int(x) for x in sys.argv[2].split(".")])
PY
  wheel=$(ls "$ROOT"/.whl/"$module"-*.whl 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$wheel" ]; then
    echo "gpu_check.sh: $py lacks $module $minimum or later and .whl/ holds no wheel of it" >&2
    return 1
  fi
  if [ -z "$site" ]; then site="$(mktemp -d)"; export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"; fi
  "$py" -m zipfile -e "$wheel" "$site" || { echo "gpu_check.sh: cannot unpack $wheel" >&2; return 1; }
  echo "gpu_check.sh: $module from $(basename "$wheel")"
}
