#!/usr/bin/env bash
# The real web UI for `make run` and the tests, installed once by the project
# image's own recipe (images/project/install-webui.sh) and cached under
# ${RDEV_CACHE_DIR:-~/.cache}/rdev-webui, keyed by Node's major version.
#
#   hack/webui.sh    -> prints the path of the UI's command, or exits 2 with
#                       one line on stderr saying why it cannot be installed here
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cache="${RDEV_CACHE_DIR:-$HOME/.cache}/rdev-webui"
command -v node >/dev/null 2>&1 || { echo "webui: no node on PATH (Node 20 or later is needed)" >&2; exit 2; }
major="$(node -p 'process.versions.node.split(".")[0]')"
prefix="$cache/node-$major"
mkdir -p "$cache"
# One install at a time (make run and a test may ask together).
exec 9>"$cache/.lock"
flock 9
if [[ ! -f "$prefix/.installed" ]]; then
  echo "webui: installing the web UI into $prefix (once; a few minutes)" >&2
  if ! bash "$ROOT/images/project/install-webui.sh" "$prefix" >"$cache/install.log" 2>&1; then
    tail -n 1 "$cache/install.log" >&2
    exit 2
  fi
fi
echo "$prefix/node_modules/.bin/claude-code-ui"
