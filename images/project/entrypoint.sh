#!/bin/sh
# Clones REPO_URL (branch REPO_BRANCH, if set) into /workspace/repo when it is
# empty, then waits: the operator execs git and the web UI into this pod.
set -eu
repo=/workspace/repo
if [ -n "${REPO_URL:-}" ] && [ -z "$(ls -A "$repo" 2>/dev/null)" ]; then
  if [ -n "${REPO_BRANCH:-}" ]; then
    git clone --branch "$REPO_BRANCH" -- "$REPO_URL" "$repo"
  else
    git clone -- "$REPO_URL" "$repo"
  fi
fi
mkdir -p /workspace/sessions
trap 'exit 0' TERM INT
while :; do sleep 3600 & wait $!; done
