"""git argv lists and parsers of their output.

Every command is an argv array run without a shell. User-written names are
validated (refnames.py) before they get here, are always placed after ``--``
where git accepts it, and otherwise only inside a ``refs/...`` path, so that no
value can become a git option.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Argv = list[str]

# Git's own environment is fixed so that no config in the pod prompts or pages.
GIT = ["git", "-c", "core.pager=cat", "-c", "advice.detachedHead=false"]


def fetch(repo: str) -> Argv:
    return [*GIT, "-C", repo, "fetch", "--prune", "--quiet", "origin"]


def default_branch(repo: str) -> Argv:
    return [*GIT, "-C", repo, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"]


def resolve_ref(repo: str, name: str) -> Argv:
    """Print which fully qualified ref ``name`` is, trying remote branch, tag, local branch."""
    return [
        *GIT,
        "-C",
        repo,
        "for-each-ref",
        "--format=%(refname)",
        "--",
        f"refs/remotes/origin/{name}",
        f"refs/tags/{name}",
        f"refs/heads/{name}",
    ]


def worktree_list(repo: str) -> Argv:
    return [*GIT, "-C", repo, "worktree", "list", "--porcelain"]


def worktree_add_existing(repo: str, path: str, branch: str) -> Argv:
    # git DWIMs an origin-only branch into a local tracking branch.
    return [*GIT, "-C", repo, "worktree", "add", "--", path, branch]


def worktree_add_new(repo: str, path: str, branch: str, start: str) -> Argv:
    return [*GIT, "-C", repo, "worktree", "add", "--no-track", "-b", branch, "--", path, start]


def head_commit(path: str) -> Argv:
    return [*GIT, "-C", path, "rev-parse", "--verify", "HEAD"]


def status(path: str) -> Argv:
    return [*GIT, "-C", path, "status", "--porcelain=v1", "-z", "--untracked-files=all"]


def unpushed(path: str) -> Argv:
    return [*GIT, "-C", path, "rev-list", "--count", "HEAD", "--not", "--remotes"]


def worktree_remove(repo: str, path: str) -> Argv:
    # Without --force git itself refuses a worktree with changes: a second guard.
    return [*GIT, "-C", repo, "worktree", "remove", "--", path]


@dataclass(frozen=True)
class Worktree:
    path: str
    branch: str | None  # short name; None when detached


def parse_worktrees(output: str) -> list[Worktree]:
    trees: list[Worktree] = []
    path: str | None = None
    branch: str | None = None
    for line in [*output.splitlines(), ""]:
        if not line:
            if path is not None:
                trees.append(Worktree(path=path, branch=branch))
            path, branch = None, None
        elif line.startswith("worktree "):
            path = line[len("worktree ") :]
        elif line.startswith("branch "):
            ref = line[len("branch ") :]
            branch = ref.removeprefix("refs/heads/")
    return trees


def find_worktree(trees: list[Worktree], path: str) -> Worktree | None:
    wanted = path.rstrip("/")
    return next((t for t in trees if t.path.rstrip("/") == wanted), None)


@dataclass(frozen=True)
class StatusCounts:
    uncommitted: int
    untracked: int


def parse_status(output: str) -> StatusCounts:
    """Count entries of ``status --porcelain=v1 -z`` (renames carry a second path)."""
    uncommitted = untracked = 0
    entries = output.split("\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 3:
            continue
        code = entry[:2]
        if code == "??":
            untracked += 1
        elif code == "!!":
            continue
        else:
            uncommitted += 1
            if "R" in code or "C" in code:
                i += 1  # the original path of a rename or copy
    return StatusCounts(uncommitted=uncommitted, untracked=untracked)


_CHECKED_OUT = re.compile(r"already (checked out|used by worktree) at", re.IGNORECASE)
_EXISTS = re.compile(r"already exists", re.IGNORECASE)


def checkout_refused_elsewhere(stderr: str) -> bool:
    return bool(_CHECKED_OUT.search(stderr))


def path_exists_error(stderr: str) -> bool:
    # Not `"branch" not in stderr`: the path itself, or git's "Preparing worktree
    # (new branch 'x')" line, may contain the word.
    return bool(_EXISTS.search(stderr)) and not branch_exists_error(stderr)


def branch_exists_error(stderr: str) -> bool:
    return "a branch named" in stderr.lower() and "already exists" in stderr.lower()


# Whole steps as one exec each -------------------------------------------------
# Each exec costs a websocket, a TLS handshake and a process in the pod, so a
# step's git commands run in one constant script. Values arrive as positional
# arguments and are only ever expanded inside double quotes; git sees them after
# "--" or inside refs/... paths, never where an option could be.

_RESOLVE = r"""
resolve() {
  for r in "refs/remotes/origin/$1" "refs/tags/$1" "refs/heads/$1"; do
    if git -C "$repo" show-ref --verify --quiet "$r"; then echo "$r"; return 0; fi
  done
  return 1
}
"""

PRECHECK_SCRIPT = (
    r"""
set -u
repo="$1"; branch="$2"; new="$3"; from="$4"
"""
    + _RESOLVE
    + r"""
git -c core.pager=cat -C "$repo" fetch --prune --quiet origin || exit 10
if [ "$new" != "new" ]; then
  resolve "$branch" >/dev/null || exit 20
  echo "start="
  exit 0
fi
if [ -z "$from" ]; then
  from="$(git -C "$repo" symbolic-ref --quiet --short refs/remotes/origin/HEAD)" || from=""
  from="${from#origin/}"
  [ -n "$from" ] || from=main
fi
echo "from=$from"
start="$(resolve "$from")" || exit 21
echo "start=$start"
"""
)

CHECKOUT_SCRIPT = r"""
set -u
repo="$1"; path="$2"; branch="$3"; start="$4"
if [ -e "$path" ]; then
  top="$(git -C "$path" rev-parse --show-toplevel 2>/dev/null)" || exit 30
  [ "$top" = "$(cd "$path" && pwd -P)" ] || exit 30
  current="$(git -C "$path" symbolic-ref --quiet --short HEAD)" || current=""
  if [ "$current" != "$branch" ]; then echo "holds=$current"; exit 31; fi
  echo "added=no"
elif [ -n "$start" ]; then
  if ! err="$(git -C "$repo" worktree add --quiet --no-track -b "$branch" \
      -- "$path" "$start" 2>&1)"; then
    # The branch was made by an earlier attempt that stopped before the worktree.
    if git -C "$repo" show-ref --verify --quiet "refs/heads/$branch"; then
      git -C "$repo" worktree add --quiet -- "$path" "$branch" || exit 40
    else
      echo "$err" >&2; exit 40
    fi
  fi
  echo "added=yes"
else
  git -C "$repo" worktree add --quiet -- "$path" "$branch" || exit 40
  echo "added=yes"
fi
echo "commit=$(git -C "$path" rev-parse --verify HEAD)"
printf '%s\n' '--rdev-changes--'
git -c core.pager=cat -C "$path" status --porcelain=v1 -z --untracked-files=all || exit 50
printf '\n--rdev--\n'
git -C "$path" rev-list --count HEAD --not --remotes || exit 51
"""

REMOVE_SCRIPT = r"""
set -u
repo="$1"; path="$2"; run="$3"
[ -e "$path" ] || { rm -rf -- "$run"; echo "removed=gone"; exit 0; }
git -c core.pager=cat -C "$path" status --porcelain=v1 -z --untracked-files=all || exit 50
printf '\n--rdev--\n'
git -C "$path" rev-list --count HEAD --not --remotes || exit 51
printf '\n--rdev-verdict--\n'
dirty="$(git -C "$path" status --porcelain=v1 --untracked-files=all | head -c 1)"
ahead="$(git -C "$path" rev-list --count HEAD --not --remotes)"
if [ -n "$dirty" ] || [ "$ahead" != 0 ]; then echo "kept"; exit 0; fi
git -C "$repo" worktree remove -- "$path" || exit 52
rm -rf -- "$run"
echo "removed"
"""


def precheck(repo: str, branch: str, new: bool, from_ref: str | None) -> Argv:
    """fetch, then resolve the branch (or the new branch's start); prints key=value lines."""
    return ["sh", "-c", PRECHECK_SCRIPT, "sh", repo, branch, "new" if new else "", from_ref or ""]


def checkout(repo: str, path: str, branch: str, start: str | None) -> Argv:
    """Create (or find) the worktree; prints added=, commit= and the workspace state."""
    return ["sh", "-c", CHECKOUT_SCRIPT, "sh", repo, path, branch, start or ""]


def remove(repo: str, path: str, run_dir: str) -> Argv:
    """Remove the worktree only when nothing is at stake; prints the state and a verdict."""
    return ["sh", "-c", REMOVE_SCRIPT, "sh", repo, path, run_dir]


def parse_fields(stdout: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isidentifier():
            fields[key] = value
    return fields
