# Sourced by the other scripts: builds (once) and activates the virtual environments.
#   ensure_env DIR REQUIREMENTS   create DIR from the pinned REQUIREMENTS unless up to date
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"

ensure_env() {
  local dir="$ROOT/$1" req="$ROOT/$2"
  local stamp="$dir/.xlinalg-stamp" want ext_stamp="$dir/.xlinalg-ext-stamp" ext
  # (pyproject.toml too: the editable install maps package names from it)
  want="$(cat "$req" "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
  # the compiled kernel layer's sources: the editable install builds it in place
  ext="$(cat "$ROOT/setup.py" "$ROOT"/xlinalg/lapack/src/* "$ROOT"/xlinalg/cuda/src/* | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "== building $1 from $2" >&2
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
    # (stdout goes to stderr: the callers capture only the interpreter's path)
    "$dir/bin/python" -m pip install -q --upgrade pip >&2
    "$dir/bin/python" -m pip install -q -r "$req" >&2
    "$dir/bin/python" -m pip install -q --no-deps -e "$ROOT" >&2
    echo "$want" >"$stamp"
    echo "$ext" >"$ext_stamp"
  fi
  # rebuild the layer alone when its sources changed since
  if [ ! -f "$ext_stamp" ] || [ "$(cat "$ext_stamp")" != "$ext" ]; then
    echo "== building the compiled kernel layer for $1" >&2
    "$dir/bin/python" -m pip install -q --no-deps -e "$ROOT" >&2
    echo "$ext" >"$ext_stamp"
  fi
}

main_env() { ensure_env .venv requirements/main.txt; echo "$ROOT/.venv/bin/python"; }
mxnet_env() { ensure_env .venv-mxnet requirements/mxnet.txt; echo "$ROOT/.venv-mxnet/bin/python"; }
