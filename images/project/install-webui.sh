#!/usr/bin/env bash
# Installs the browser coding UI into PREFIX: the project image's Dockerfile runs
# this, and so do `make run` and the tests (outside a container), so the image's
# recipe is the one exercised. Only the install steps ship here, never the UI's
# code (it is AGPL-3.0).
#
#   install-webui.sh PREFIX     -> PREFIX/node_modules/.bin/claude-code-ui
#
# (also PREFIX/node_modules/.bin/cloudcli; 1.37 ships only that name, so the
# old one, the operator's default RDEV_WEBUI_COMMAND, is linked to it.)
#
# The package follows Node's major version unless RDEV_WEBUI_PACKAGE names one:
#   Node >= 22: @cloudcli-ai/cloudcli (the current name)
#   Node 20/21: @siteboon/claude-code-ui@1.12.0 (its older name; the last on Node 20)
# Native modules (node-pty, better-sqlite3, sqlite3) are built from source
# against the running Node's own headers: no prebuilt download is needed.
# Exit 2 with one line on stderr when it cannot work here.
set -euo pipefail
CLOUDCLI=@cloudcli-ai/cloudcli@1.37.3
CLAUDE_CODE_UI=@siteboon/claude-code-ui@1.12.0
prefix="${1:?usage: install-webui.sh PREFIX}"
cannot() { echo "install-webui: $*" >&2; exit 2; }

command -v node >/dev/null 2>&1 || cannot "no node on PATH (Node 20 or later is needed)"
command -v npm >/dev/null 2>&1 || cannot "no npm on PATH"
major="$(node -p 'process.versions.node.split(".")[0]')"
pkg="${RDEV_WEBUI_PACKAGE:-}"
if [[ -z "$pkg" ]]; then
  if ((major >= 22)); then pkg="$CLOUDCLI"
  elif ((major >= 20)); then pkg="$CLAUDE_CODE_UI"
  else cannot "node $(node --version) is too old (Node 20 or later is needed)"; fi
fi
# The headers of the Node that runs the UI: <prefix of node>/include/node.
nodedir="$(dirname "$(dirname "$(node -p process.execPath)")")"
[[ -f "$nodedir/include/node/node.h" ]] \
  || cannot "no Node headers in $nodedir/include/node (Debian: apt-get install libnode-dev)"
for tool in python3 make g++; do
  command -v "$tool" >/dev/null 2>&1 || cannot "no $tool on PATH (needed to build native modules)"
done

stamp="$pkg node-$major"
if [[ -f "$prefix/.installed" && "$(cat "$prefix/.installed")" == "$stamp" ]]; then
  exit 0
fi
mkdir -p "$prefix"
rm -f "$prefix/.installed"
export npm_config_nodedir="$nodedir" npm_config_build_from_source=true \
  npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
# Scripts off first, then the native modules built from source: prebuild
# downloads are never tried (they are unreachable in many clusters).
npm install --prefix "$prefix" --omit=dev --ignore-scripts --no-package-lock "$pkg" >&2
npm rebuild --prefix "$prefix" --build-from-source --nodedir="$nodedir" >&2
bin="$prefix/node_modules/.bin"
[[ -x "$bin/cloudcli" ]] || cannot "$pkg installed no cloudcli binary"
[[ -e "$bin/claude-code-ui" ]] || ln -s cloudcli "$bin/claude-code-ui"
echo "$stamp" >"$prefix/.installed"
