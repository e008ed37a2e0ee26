"""The git steps run in a project pod, as argv arrays, and parsers of their output.

User-written names are validated (refnames.py) before they get here. Each step
is one constant ``sh -c`` script (one exec each: a websocket, a TLS handshake
and a process in the pod); values arrive as positional arguments, are only
expanded inside double quotes, and reach git after ``--`` or inside a
``refs/...`` path, never where an option could be.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from .execresult import ExecResult

Argv = list[str]


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


def checkout_refused_elsewhere(stderr: str) -> bool:
    return bool(_CHECKED_OUT.search(stderr))


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
  # Only a branch will do: a tag or a commit would be checked out detached.
  for r in "refs/remotes/origin/$branch" "refs/heads/$branch"; do
    if git -C "$repo" show-ref --verify --quiet "$r"; then echo "start="; exit 0; fi
  done
  if git -C "$repo" show-ref --verify --quiet "refs/tags/$branch"; then
    echo "named=tag"; exit 22
  fi
  if git -C "$repo" rev-parse --verify --quiet --end-of-options "$branch^{commit}" >/dev/null
  then
    echo "named=commit"; exit 22
  fi
  exit 20
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


CHANGES_SCRIPT = r"""
git -c core.pager=cat -C "$1" status --porcelain=v1 -z --untracked-files=all || exit 10
printf '\n--rdev--\n'
git -C "$1" rev-list --count HEAD --not --remotes || exit 11
printf '%s\n' '--rdev-activity--'
# A fingerprint of everything that counts as activity: HEAD and branch, the
# status, size and time of every changed or untracked file, the web UI's log.
{
  git -C "$1" rev-parse HEAD 2>/dev/null
  git -C "$1" symbolic-ref -q HEAD 2>/dev/null
  git -c core.pager=cat -C "$1" status --porcelain=v1 -z --untracked-files=all 2>/dev/null
  ( cd "$1" && git ls-files -z -m -o --exclude-standard \
      | xargs -0 -r stat -c '%n %Y %s' ) 2>/dev/null
  [ -z "${2:-}" ] || stat -c '%s %Y' "$2/webui.log" 2>/dev/null
} | cksum
"""


def changes(path: str, run_dir: str = "") -> Argv:
    """The workspace state: ``status -z`` output, the unpushed commit count, an activity mark."""
    return ["sh", "-c", CHANGES_SCRIPT, "sh", path, run_dir]


def parse_changes(stdout: str) -> tuple[int, int, int]:
    """(uncommitted files, untracked files, unpushed commits) from the changes output."""
    stdout = stdout.partition("--rdev-activity--\n")[0]
    status_part, _, count_part = stdout.partition("\n--rdev--\n")
    counts = parse_status(status_part)
    try:
        unpushed = int(count_part.strip() or "0")
    except ValueError:
        unpushed = 0
    return counts.uncommitted, counts.untracked, unpushed


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


# Typed results: exit codes and markers stay in this module -----------------------
class Found(StrEnum):
    OK = "ok"
    BRANCH_MISSING = "branch-missing"
    NOT_A_BRANCH = "not-a-branch"  # a tag or a commit: ``named`` says which
    FROM_MISSING = "from-missing"
    FAILED = "failed"


@dataclass(frozen=True)
class Precheck:
    found: Found
    start: str | None = None  # the ref a new branch starts from
    from_ref: str | None = None  # the start as named (the default branch when unset)
    named: str = ""  # what a name that is not a branch names: tag or commit
    detail: str = ""


def read_precheck(result: ExecResult) -> Precheck:
    fields = parse_fields(result.stdout)
    if result.returncode == 20:
        return Precheck(Found.BRANCH_MISSING)
    if result.returncode == 21:
        return Precheck(Found.FROM_MISSING, from_ref=fields.get("from"))
    if result.returncode == 22:
        return Precheck(Found.NOT_A_BRANCH, named=fields.get("named", "commit"))
    if not result.ok:
        step = "git fetch" if result.returncode == 10 else "the branch check"
        return Precheck(Found.FAILED, detail=f"{step} failed with {result.describe()}")
    return Precheck(Found.OK, start=fields.get("start") or None, from_ref=fields.get("from"))


class Placed(StrEnum):
    OK = "ok"
    PATH_TAKEN = "path-taken"  # the path exists and is not a worktree of the branch
    HOLDS_OTHER = "holds-other"  # the path is a worktree of another branch
    BRANCH_ELSEWHERE = "branch-elsewhere"  # git: the branch is checked out elsewhere
    FAILED = "failed"


@dataclass(frozen=True)
class Checkout:
    placed: Placed
    added: bool = False
    commit: str = ""
    holds: str = ""
    changes: tuple[int, int, int] | None = None
    detail: str = ""


def read_checkout(result: ExecResult) -> Checkout:
    head, _, state = result.stdout.partition("--rdev-changes--\n")
    fields = parse_fields(head)
    if result.returncode == 30:
        return Checkout(Placed.PATH_TAKEN)
    if result.returncode == 31:
        return Checkout(Placed.HOLDS_OTHER, holds=fields.get("holds", ""))
    if result.returncode == 40 and checkout_refused_elsewhere(result.stderr):
        return Checkout(Placed.BRANCH_ELSEWHERE)
    if not result.ok or not fields.get("commit"):
        return Checkout(Placed.FAILED, detail=f"git worktree add failed with {result.describe()}")
    return Checkout(
        Placed.OK,
        added=fields.get("added") == "yes",
        commit=fields["commit"],
        changes=parse_changes(state),
    )


class Removal(StrEnum):
    GONE = "gone"  # nothing was there
    REMOVED = "removed"
    KEPT = "kept"  # something would be lost
    REFUSED = "refused"  # git refused to remove it
    FAILED = "failed"  # the state could not be read


@dataclass(frozen=True)
class Remove:
    removal: Removal
    changes: tuple[int, int, int] | None = None
    detail: str = ""


def read_remove(result: ExecResult) -> Remove:
    state, _, verdict = result.stdout.partition("\n--rdev-verdict--\n")
    if result.ok and "removed=gone" in result.stdout:
        return Remove(Removal.GONE)
    if not result.ok and result.returncode != 52:
        return Remove(
            Removal.FAILED, detail=f"reading the worktree failed with {result.describe()}"
        )
    changes = parse_changes(state)
    if verdict.strip() == "kept":
        return Remove(Removal.KEPT, changes)
    if result.returncode == 52:
        return Remove(Removal.REFUSED, changes, detail=result.describe())
    return Remove(Removal.REMOVED, changes)


@dataclass(frozen=True)
class Workspace:
    counts: tuple[int, int, int]  # uncommitted, untracked, unpushed
    activity: str  # changes whenever anything that counts as activity happened


def read_changes(result: ExecResult) -> Workspace | None:
    """The workspace state, or None when it could not be read."""
    if not result.ok:
        return None
    activity = result.stdout.partition("--rdev-activity--\n")[2].strip()
    return Workspace(parse_changes(result.stdout), activity)


PUSH_SCRIPT = r"""
set -u
path="$1"; branch="$3"
if commit="$(git -C "$path" rev-parse --verify HEAD)"; then
  echo "commit=$commit"
  # Commits only: uncommitted changes stay in the worktree. The refspec starts
  # with HEAD, so no value can become an option.
  git -c core.pager=cat -C "$path" push --quiet origin "HEAD:refs/heads/$branch" </dev/null
  echo "push_exit=$?"
else
  echo "push_exit=60"
fi
printf '%s\n' '--rdev-pushed--'
"""


def push_and_changes(path: str, run_dir: str, branch: str) -> Argv:
    """Push the branch's commits to origin for review, then read the workspace state.

    One exec at checkin instead of two; the state is read after the push, so
    ``unpushedCommits`` says what the push left behind.
    """
    return ["sh", "-c", PUSH_SCRIPT + CHANGES_SCRIPT, "sh", path, run_dir, branch]


@dataclass(frozen=True)
class Push:
    pushed: bool
    commit: str | None
    detail: str = ""


def read_push_and_changes(result: ExecResult) -> tuple[Push, Workspace | None]:
    """Whether the push went through (with git's reason when not), and the workspace state."""
    head, marked, rest = result.stdout.partition("--rdev-pushed--\n")
    fields = parse_fields(head)
    code = fields.get("push_exit", "")
    if code == "0":
        push = Push(True, fields.get("commit"))
    else:
        failed = ExecResult(int(code) if code.isdigit() else result.returncode, "", result.stderr)
        push = Push(False, fields.get("commit"), detail=f"git push failed with {failed.describe()}")
    workspace = read_changes(ExecResult(result.returncode, rest, result.stderr)) if marked else None
    return push, workspace
