#!/usr/bin/env bash
# The native-conformance page (docs/native-conformance.md): the conformance suite on PyTorch's,
# JAX's and MXNet's own functions. Runs every native backend with its known-failures file and
# the reproductions listed there (MXNet's in the MXNet environment), writes the results to
# docs/native-conformance/<backend>.json, then the page from them.
#
#   bash scripts/native_conformance.sh                  all four backends, then the page
#   bash scripts/native_conformance.sh torch-native     only these backends, then the page
#                                                       (from every result file present)
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
out="$ROOT/docs/native-conformance"
backends=("$@")
[ ${#backends[@]} -eq 0 ] && backends=(torch-native jax-native jax-native-jit mxnet-native)
py="$(main_env)"
for backend in "${backends[@]}"; do
  echo "== $backend" >&2
  if [ "$backend" = mxnet-native ]; then
    "$(mxnet_env)" scripts/native_conformance.py run --backend "$backend" --out "$out"
  else
    "$py" scripts/native_conformance.py run --backend "$backend" --out "$out"
  fi
done
"$py" scripts/native_conformance.py page --results "$out" --page "$ROOT/docs/native-conformance.md"
echo "== wrote docs/native-conformance.md" >&2
