#!/usr/bin/env bash
# The documentation site (mkdocs.yml, pages in docs/), built with MkDocs and the Material theme
# in its own environment .venv-docs (pinned in requirements/docs.txt).
#
#   bash scripts/docs.sh          build: regenerate docs/operators.md and docs/api.md, then `mkdocs build --strict`
#                                 into site/ (any warning fails the build)
#   bash scripts/docs.sh serve    build as above, then serve the site with live reload on
#                                 http://127.0.0.1:8000 (extra arguments go to `mkdocs serve`)
#   bash scripts/docs.sh check    build as above, then load pages in headless Chromium:
#                                 math typeset, no console errors, screenshots
#                                 (scripts/check_site.py; installs Debian's chromium if missing)
#
# Math is typeset by KaTeX, served from the site itself so it works offline: the pinned npm
# package is fetched once with `npm pack` into .venv-docs/katex and checked against its hash.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
export NO_MKDOCS_2_WARNING=1  # (a notice of the theme at every build, not a warning about the site)
cd "$ROOT"

KATEX_VERSION=0.19.1
KATEX_INTEGRITY="sha512-jG8uKntjSEcm2EpQOh0XturpPuuC9r3Sq5HLHdsFdWZT27E672SF19QEi+of0/YeOy15lDgRhKvr5614uRrEfA=="

mode="${1:-build}"
[ $# -gt 0 ] && shift
case "$mode" in build|serve|check) ;; *) echo "usage: bash scripts/docs.sh [build|serve|check] [ARGS...]" >&2; exit 2 ;; esac

ensure_env .venv-docs requirements/docs.txt
py="$ROOT/.venv-docs/bin/python"

ensure_katex() {
  local dir="$ROOT/.venv-docs/katex"
  if [ "$(cat "$dir/VERSION" 2>/dev/null)" = "$KATEX_VERSION" ] && [ -f "$dir/dist/katex.min.js" ]; then
    return
  fi
  command -v npm >/dev/null || { echo "docs.sh: npm is needed once to fetch KaTeX (Debian: apt-get install npm)" >&2; exit 1; }
  echo "== fetching KaTeX $KATEX_VERSION" >&2
  local tmp
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "katex@$KATEX_VERSION" >/dev/null)
  local tarball="$tmp/katex-$KATEX_VERSION.tgz"
  "$py" - "$tarball" "$KATEX_INTEGRITY" <<'EOF'
import base64, hashlib, sys
path, want = sys.argv[1], sys.argv[2]
got = "sha512-" + base64.b64encode(hashlib.sha512(open(path, "rb").read()).digest()).decode()
sys.exit(0 if got == want else f"KaTeX tarball hash mismatch: {got} != {want}")
EOF
  rm -rf "$dir"
  mkdir -p "$dir"
  tar -xzf "$tarball" -C "$tmp"
  mv "$tmp/package/dist" "$dir/dist"
  cp "$tmp/package/LICENSE" "$dir/dist/LICENSE"
  echo "$KATEX_VERSION" >"$dir/VERSION"
  rm -rf "$tmp"
}

ensure_katex
export XLINALG_KATEX_DIR="$ROOT/.venv-docs/katex/dist"

echo "== regenerating docs/operators.md and docs/api.md" >&2
"$py" docs/make_reference.py

echo "== mkdocs build --strict" >&2
start=$(date +%s%N)
"$py" -m mkdocs build --strict --clean --site-dir "$ROOT/site"
tenths=$(( ($(date +%s%N) - start) / 100000000 ))
echo "== built site/ in $((tenths / 10)).$((tenths % 10)) s" >&2

case "$mode" in
  serve) exec "$py" -m mkdocs serve --strict --dev-addr 127.0.0.1:8000 "$@" ;;
  check)
    if ! command -v chromium >/dev/null; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "== installing Debian's chromium" >&2
        apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2
      else
        echo "docs.sh check needs chromium: apt-get install -y chromium (as root)" >&2
        exit 1
      fi
    fi
    exec "$py" scripts/check_site.py --site "$ROOT/site" "$@" ;;
esac
