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
from enum import IntEnum, StrEnum

from rdev_api import names
from rdev_api.execresult import ExecResult
from rdev_api.sanitize import one_line

Argv = list[str]


class Exit(IntEnum):
    """The exit codes the scripts end with and the readers branch on: one name for both.

    Each script starts with ``E_<NAME>=<code>`` for every member (``_EXITS``), so a
    script says ``exit "$E_PATH_TAKEN"`` where its reader says ``Exit.PATH_TAKEN``.
    """

    FETCH_FAILED = 10
    BRANCH_MISSING = 20
    FROM_MISSING = 21
    NOT_A_BRANCH = 22  # a tag or a commit: ``named=`` says which
    BRANCH_EXISTS = 23  # newBranch exists: ``exists=`` says where
    PATH_TAKEN = 30
    HOLDS_OTHER = 31  # ``holds=`` names the branch
    LEFT_BEHIND = 32  # another Session's worktree with work: its holdings follow
    ADD_FAILED = 40
    NO_SCRATCH = 49
    UNREADABLE = 50  # the worktree's state could not be read
    REMOVE_REFUSED = 52
    ASSESS_FAILED = 53
    MARK_FAILED = 54
    NO_COMMIT = 60  # as ``push_exit=``: HEAD has no commit to push
    TERMINATED = 143  # 128 + SIGTERM, as a shell reports it


_EXITS = "".join(f"E_{code.name}={code.value}\n" for code in Exit)


_CHECKED_OUT = re.compile(r"already (checked out|used by worktree) at", re.IGNORECASE)


def checkout_refused_elsewhere(stderr: str) -> bool:
    return bool(_CHECKED_OUT.search(stderr))


# Whole steps as one exec each -------------------------------------------------
# Each exec costs a websocket, a TLS handshake and a process in the pod, so a
# step's git commands run in one constant script. Values arrive as positional
# arguments and are only ever expanded inside double quotes; git sees them after
# "--" or inside refs/... paths, never where an option could be.


# A script stopped by the exec's deadline says so with its own code.
_SIGNALS = (
    _EXITS
    + r"""
trap 'exit "$E_TERMINATED"' TERM INT HUP
"""
)

# A scratch folder for what a script reads twice; it goes when the script ends.
_SCRATCH = (
    _SIGNALS
    + r"""
scratch="$(mktemp -d)" || exit "$E_NO_SCRATCH"
trap 'rm -rf -- "$scratch"' EXIT
"""
)

# Listings stay in the pod: one walk of the worktree (git status) streams into
# one awk program (TALLY), and only counts and a few names come back, so a
# worktree with a million files costs the operator a few bytes. The walk ends
# with git's exit status as a line of its own, so a pipe loses nothing. Every
# process counts: the end of a burst runs this once per Session.
_COUNTS = r"""
TALLY='
BEGIN { UNREADABLE = 2 }
part == 0 && /^## / {
  b = substr($0, 4)
  if (b == "HEAD (no branch)") b = "(no branch)"
  sub(/^No commits yet on /, "", b); sub(/\.\.\..*$/, "", b); sub(/ .*$/, "", b)
  next
}
part == 0 && /^status_exit=/ { failed = ($0 != "status_exit=0"); part = 1; next }
part == 0 {
  k = substr($0, 1, 3)
  if (k == "?? ") u++
  else if (k == "!! ") { i++; if (i <= 3) names = names substr($0, 4) "\t" }
  else c++
  next
}
index($0, "WIP on " b ":") == 1 || index($0, "On " b ":") == 1 { s++ }
END {
  if (failed || part == 0) exit UNREADABLE
  printf "uncommitted=%d\nuntracked=%d\nunpushed=%d\n", c, u, ahead
  if (!judge) exit 0
  printf "ignored=%d\nignored_names=%s\nstashes=%d\n", i, names, s
  exit (c + u + ahead + i + s + hidden > 0) ? 0 : 1
}'
# walk DIR IGNORED: one entry a line (git quotes a name holding a quote, a
# backslash or a control character), the branch first, git's exit status last.
walk() {
  git -c core.pager=cat -c core.quotePath=false -C "$1" status --porcelain=v1 --branch \
    --no-renames --untracked-files=all --ignored="$2"
  echo "status_exit=$?"
}
# counts DIR [FILE]: uncommitted=, untracked=, unpushed=; FILE keeps the walk.
counts() {
  ahead="$(git -C "$1" rev-list --count HEAD --not --remotes)" || return 1
  if [ -n "${2:-}" ]; then
    walk "$1" no >"$2" && awk -v ahead="$ahead" "$TALLY" "$2"
  else
    walk "$1" no | awk -v ahead="$ahead" "$TALLY"
  fi
}
"""

# What a worktree holds that removing it would lose, beyond what counts() sees:
# ignored files, edits hidden by skip-worktree/assume-unchanged, stashes made on
# its branch. Prints key=value lines; returns 0 when it holds anything, 1 when
# it holds nothing, 2 when it could not tell (which the caller treats as work).
_ASSESS = (
    _COUNTS
    + r"""
assess() {
  p="$1"
  ahead="$(git -C "$p" rev-list --count HEAD --not --remotes)" || return 2
  flagged="$( { git -C "$p" ls-files -v; echo "ls_exit=$?"; } | awk '
    /^ls_exit=/ { done = ($0 == "ls_exit=0"); next }
    /^(S|[a-z]) / { print }
    END { exit done ? 0 : 1 }')" || return 2
  hidden=0; hidden_names=""
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    f="${line#* }"
    case "$f" in
      \"*) ;;  # a name git had to quote: cannot compare it, so count it
      *)
        [ -e "$p/$f" ] || [ -L "$p/$f" ] || continue  # not in the worktree: nothing to lose
        want="$(git -C "$p" rev-parse -q --verify ":$f" 2>/dev/null)" || want=""
        have="$(git -C "$p" hash-object -- "$p/$f" 2>/dev/null)" || have="?"
        [ "$want" != "$have" ] || continue ;;
    esac
    hidden=$((hidden + 1))
    [ "$hidden" -gt 3 ] || hidden_names="$hidden_names$f	"
  done <<EOF_FLAGGED
$flagged
EOF_FLAGGED
  echo "hidden=$hidden"
  echo "hidden_names=$hidden_names"
  { walk "$p" matching; git -C "$p" stash list --format=%gs 2>/dev/null; } |
    awk -v ahead="$ahead" -v hidden="$hidden" -v judge=1 "$TALLY"
  verdict=$?
  [ "$verdict" -le 1 ] || return 2  # the walk or awk failed: that is not "nothing"
  return "$verdict"
}
"""
)

# The checkout, one exec: fetch, decide, and only when the Session may go on, place
# the worktree. A finding (the branch is missing or not a branch, fromRef is missing,
# newBranch exists) exits before anything in the pod changes: no worktree, no branch,
# no run folder.
CHECKOUT_SCRIPT = (
    _SIGNALS
    + _ASSESS
    + r"""
set -u
repo="$1"; path="$2"; branch="$3"; new="$4"; from="$5"; run="$6"; uid="$7"
# This Session's mark is written before it creates anything, so a local branch of
# its name is then the one it made in an attempt that stopped midway. Every process
# counts (a burst runs this once per Session): the shell reads files itself, and
# one for-each-ref answers every ref question after the fetch.
left=""
if [ -r "$run/session-uid" ]; then IFS= read -r left <"$run/session-uid" || :; fi
own=""
[ "$left" != "$uid" ] || own=own
marked=""
mark() { mkdir -p -- "$run" && printf '%s\n' "$uid" >"$run/session-uid" && marked=yes; }
git -c core.pager=cat -C "$repo" fetch --prune --quiet origin || exit "$E_FETCH_FAILED"
if [ "$new" = "new" ] && [ -z "$from" ]; then
  from="$(git -C "$repo" symbolic-ref --quiet --short refs/remotes/origin/HEAD)" || from=""
  from="${from#origin/}"
  [ -n "$from" ] || from=main
fi
# The refs that exist among the candidates, one a line. A pattern also matches the
# refs below it (refs/heads/a matches refs/heads/a/b), so has() compares whole lines.
refs="$(git -C "$repo" for-each-ref --format='%(refname)' \
  "refs/remotes/origin/$branch" "refs/heads/$branch" "refs/tags/$branch" \
  ${from:+"refs/remotes/origin/$from"} ${from:+"refs/tags/$from"} ${from:+"refs/heads/$from"})" \
  || refs=""
has() {
  case "
$refs
" in *"
$1
"*) return 0 ;; esac
  return 1
}
start=""
if [ "$new" != "new" ]; then
  # Only a branch will do: a tag or a commit would be checked out detached.
  if ! has "refs/remotes/origin/$branch" && ! has "refs/heads/$branch"; then
    if has "refs/tags/$branch"; then
      echo "named=tag"; exit "$E_NOT_A_BRANCH"
    fi
    if git -C "$repo" rev-parse --verify --quiet --end-of-options "$branch^{commit}" >/dev/null
    then
      echo "named=commit"; exit "$E_NOT_A_BRANCH"
    fi
    exit "$E_BRANCH_MISSING"
  fi
  echo "start="
else
  # newBranch only ever creates: a branch that exists is someone's work, unless
  # this Session made it itself (an attempt that stopped mid-checkout).
  where=""
  if has "refs/heads/$branch"; then where="local"; fi
  if has "refs/remotes/origin/$branch"; then where="${where:+$where,}origin"; fi
  if [ -n "$where" ] && { [ "$own" != "own" ] || [ "$where" != "local" ]; }; then
    echo "exists=$where"; exit "$E_BRANCH_EXISTS"
  fi
  echo "from=$from"
  for r in "refs/remotes/origin/$from" "refs/tags/$from" "refs/heads/$from"; do
    if has "$r"; then start="$r"; break; fi
  done
  [ -n "$start" ] || exit "$E_FROM_MISSING"
  echo "start=$start"
fi
# Decided: from here on the Session may change the pod.
if [ -e "$path" ]; then
  top="$(git -C "$path" rev-parse --show-toplevel 2>/dev/null)" || exit "$E_PATH_TAKEN"
  [ "$top" = "$(cd "$path" && pwd -P)" ] || exit "$E_PATH_TAKEN"
  current="$(git -C "$path" symbolic-ref --quiet --short HEAD)" || current=""
  if [ "$current" != "$branch" ]; then echo "holds=$current"; exit "$E_HOLDS_OTHER"; fi
  if [ "$left" != "$uid" ]; then
    # Left behind by another Session of this name: adopt it only when empty.
    if held="$(assess "$path")"; then
      printf '%s\n' '--rdev-held--' "$held"; exit "$E_LEFT_BEHIND"
    elif [ $? -ne 1 ]; then
      exit "$E_ASSESS_FAILED"
    fi
  fi
  echo "added=no"
elif [ -n "$start" ]; then
  mark || exit "$E_MARK_FAILED"
  if ! err="$(git -C "$repo" worktree add --quiet --no-track -b "$branch" \
      -- "$path" "$start" 2>&1)"; then
    # This Session made the branch in an attempt that stopped before the worktree.
    if [ "$own" = "own" ] && git -C "$repo" show-ref --verify --quiet "refs/heads/$branch"
    then
      git -C "$repo" worktree add --quiet -- "$path" "$branch" || exit "$E_ADD_FAILED"
    else
      echo "$err" >&2; exit "$E_ADD_FAILED"
    fi
  fi
  echo "added=yes"
else
  git -C "$repo" worktree add --quiet -- "$path" "$branch" || exit "$E_ADD_FAILED"
  echo "added=yes"
fi
[ -n "$marked" ] || mark || exit "$E_MARK_FAILED"
echo "commit=$(git -C "$path" rev-parse --verify HEAD)"
printf '%s\n' '--rdev-changes--'
counts "$path" || exit "$E_UNREADABLE"
"""
)

# The end of a session (push for review when asked, then say what the worktree
# holds) and its deletion (remove the worktree only when assess() says it holds
# nothing). Anything it cannot read counts as work.
END_SCRIPT = (
    _SIGNALS
    + _ASSESS
    + r"""
set -u
repo="$1"; path="$2"; run="$3"; branch="$4"; push="$5"; remove="$6"
[ -e "$path" ] || { rm -rf -- "$run"; echo "removed=gone"; exit 0; }
if [ "$push" = "push" ]; then
  if commit="$(git -C "$path" rev-parse --verify HEAD)"; then
    echo "commit=$commit"
    # Commits only: uncommitted changes stay in the worktree. The refspec starts
    # with HEAD, so no value can become an option.
    git -c core.pager=cat -C "$path" push --quiet origin "HEAD:refs/heads/$branch" </dev/null
    echo "push_exit=$?"
  else
    echo "push_exit=$E_NO_COMMIT"
  fi
fi
printf '%s\n' '--rdev-pushed--'
assess "$path"
held=$?
printf '%s\n' '--rdev-verdict--'
if [ "$held" -eq 0 ]; then echo "kept"; exit 0; fi
[ "$held" -eq 1 ] || exit "$E_UNREADABLE"
[ "$remove" = "remove" ] || { echo "untouched"; exit 0; }
git -C "$repo" worktree remove -- "$path" || exit "$E_REMOVE_REFUSED"
rm -rf -- "$run"
echo "removed"
"""
)


CHANGES_SCRIPT = (
    _SCRATCH
    + _COUNTS
    + r"""
counts "$1" "$scratch/status" || exit "$E_UNREADABLE"
printf '%s\n' '--rdev-activity--'
# A fingerprint of everything that counts as activity: HEAD and branch, the
# status, size and time of every changed or untracked file, the web UI's log.
{
  git -C "$1" rev-parse HEAD 2>/dev/null
  git -C "$1" symbolic-ref -q HEAD 2>/dev/null
  cat "$scratch/status"
  ( cd -- "$1" && git ls-files -z -m -o --exclude-standard \
      | xargs -0 -r stat -c '%n %Y %s' -- ) 2>/dev/null
  [ -z "${2:-}" ] || stat -c '%s %Y' -- "$2" 2>/dev/null
} | cksum
"""
)


def changes(path: str, run_dir: str = "") -> Argv:
    """The workspace state: counts made in the pod, and an activity mark.

    The mark covers the web UI's log when ``run_dir`` is given.
    """
    log = names.webui_log_in(run_dir) if run_dir else ""
    return ["sh", "-c", CHANGES_SCRIPT, "sh", path, log]


def _count(fields: dict[str, str], key: str) -> int:
    value = fields.get(key, "").strip()
    return int(value) if value.isdigit() else 0


def parse_changes(stdout: str) -> tuple[int, int, int]:
    """(uncommitted files, untracked files, unpushed commits), as counted in the pod."""
    fields = parse_fields(stdout.partition("--rdev-activity--\n")[0])
    return (
        _count(fields, "uncommitted"),
        _count(fields, "untracked"),
        _count(fields, "unpushed"),
    )


def checkout(
    repo: str,
    path: str,
    branch: str,
    *,
    new: bool,
    from_ref: str | None,
    run_dir: str,
    uid: str,
) -> Argv:
    """Fetch, check the branch (or the new branch's start), then create (or find) the worktree.

    One exec; prints the findings, then added=, commit= and the workspace counts.
    The worktree's run folder is marked with the Session's UID before anything is
    created: a Session re-created under the same name adopts a worktree left behind
    only when it holds no work, and a local branch of newBranch's name counts as
    this Session's own only under its mark (an attempt that stopped midway).
    """
    return [
        "sh",
        "-c",
        CHECKOUT_SCRIPT,
        "sh",
        repo,
        path,
        branch,
        "new" if new else "",
        from_ref or "",
        run_dir,
        uid,
    ]


def end(
    repo: str, path: str, run_dir: str, push_branch: str | None = None, *, remove: bool = False
) -> Argv:
    """Push ``push_branch`` for review (if given), say what the worktree holds, and with
    ``remove`` remove it when it holds nothing."""
    return [
        "sh",
        "-c",
        END_SCRIPT,
        "sh",
        repo,
        path,
        run_dir,
        push_branch or "",
        "push" if push_branch else "",
        "remove" if remove else "",
    ]


def parse_fields(stdout: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isidentifier():
            fields[key] = value
    return fields


def _names(text: str) -> tuple[str, ...]:
    """File names from the pod: cleaned like any text that leaves it."""
    return tuple(n for n in (one_line(n) for n in text.split("\t")) if n)


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


@dataclass(frozen=True)
class Holdings:
    """What a worktree holds that removing it would lose."""

    uncommitted: int = 0
    untracked: int = 0
    unpushed: int = 0
    ignored: int = 0
    ignored_names: tuple[str, ...] = ()
    hidden: int = 0  # skip-worktree / assume-unchanged files that differ from the index
    hidden_names: tuple[str, ...] = ()
    stashes: int = 0

    @classmethod
    def parse(cls, text: str) -> Holdings:
        fields = parse_fields(text)
        return cls(
            uncommitted=_count(fields, "uncommitted"),
            untracked=_count(fields, "untracked"),
            unpushed=_count(fields, "unpushed"),
            ignored=_count(fields, "ignored"),
            ignored_names=_names(fields.get("ignored_names", "")),
            hidden=_count(fields, "hidden"),
            hidden_names=_names(fields.get("hidden_names", "")),
            stashes=_count(fields, "stashes"),
        )

    @property
    def counts(self) -> tuple[int, int, int]:
        return self.uncommitted, self.untracked, self.unpushed

    def describe(self) -> str:
        """E.g. "2 ignored files (.env, build/), 1 stash"; empty when it holds nothing."""

        def named(count: int, names: tuple[str, ...], what: str) -> str:
            shown = ", ".join(names[:3]) + (", ..." if count > len(names[:3]) else "")
            return f"{_plural(count, what, what + 's')} ({shown})" if names else ""

        parts = [
            _plural(self.uncommitted, "uncommitted file", "uncommitted files")
            if self.uncommitted
            else "",
            _plural(self.untracked, "untracked file", "untracked files") if self.untracked else "",
            named(self.ignored, self.ignored_names, "ignored file")
            or (_plural(self.ignored, "ignored file", "ignored files") if self.ignored else ""),
            named(self.hidden, self.hidden_names, "hidden edit")
            or (_plural(self.hidden, "hidden edit", "hidden edits") if self.hidden else ""),
            _plural(self.stashes, "stash", "stashes") if self.stashes else "",
            _plural(self.unpushed, "unpushed commit", "unpushed commits") if self.unpushed else "",
        ]
        return ", ".join(p for p in parts if p)


# Typed results: exit codes and markers stay in this module -----------------------
class Found(StrEnum):
    OK = "ok"
    BRANCH_MISSING = "branch-missing"
    NOT_A_BRANCH = "not-a-branch"  # a tag or a commit: ``named`` says which
    FROM_MISSING = "from-missing"
    EXISTS = "exists"  # newBranch names a branch that exists: ``where`` says where
    FAILED = "failed"


@dataclass(frozen=True)
class Precheck:
    found: Found
    start: str | None = None  # the ref a new branch starts from
    from_ref: str | None = None  # the start as named (the default branch when unset)
    named: str = ""  # what a name that is not a branch names: tag or commit
    where: tuple[str, ...] = ()  # where an existing branch is: local, origin
    detail: str = ""


def read_precheck(result: ExecResult) -> Precheck:
    """What the checkout script decided before it changed anything (``read_checkout``: the rest).

    ``Found.OK`` means it went on to place the worktree.
    """
    fields = parse_fields(result.stdout.partition("--rdev-changes--\n")[0])
    if result.returncode == Exit.BRANCH_MISSING:
        return Precheck(Found.BRANCH_MISSING)
    if result.returncode == Exit.FROM_MISSING:
        return Precheck(Found.FROM_MISSING, from_ref=fields.get("from"))
    if result.returncode == Exit.NOT_A_BRANCH:
        return Precheck(Found.NOT_A_BRANCH, named=fields.get("named", "commit"))
    if result.returncode == Exit.BRANCH_EXISTS:
        where = tuple(w for w in fields.get("exists", "").split(",") if w in ("local", "origin"))
        return Precheck(Found.EXISTS, where=where or ("local",))
    if result.returncode == Exit.FETCH_FAILED:
        return Precheck(Found.FAILED, detail=f"git fetch failed with {result.describe()}")
    return Precheck(Found.OK, start=fields.get("start") or None, from_ref=fields.get("from"))


class Placed(StrEnum):
    OK = "ok"
    PATH_TAKEN = "path-taken"  # the path exists and is not a worktree of the branch
    HOLDS_OTHER = "holds-other"  # the path is a worktree of another branch
    BRANCH_ELSEWHERE = "branch-elsewhere"  # git: the branch is checked out elsewhere
    LEFT_BEHIND = "left-behind"  # another Session of this name left work there
    FAILED = "failed"


@dataclass(frozen=True)
class Checkout:
    placed: Placed
    added: bool = False
    commit: str = ""
    holds: str = ""
    held: Holdings | None = None
    changes: tuple[int, int, int] | None = None
    detail: str = ""


def read_checkout(result: ExecResult) -> Checkout:
    head, _, state = result.stdout.partition("--rdev-changes--\n")
    fields = parse_fields(head)
    if result.returncode == Exit.PATH_TAKEN:
        return Checkout(Placed.PATH_TAKEN)
    if result.returncode == Exit.HOLDS_OTHER:
        return Checkout(Placed.HOLDS_OTHER, holds=fields.get("holds", ""))
    if result.returncode == Exit.LEFT_BEHIND:
        held = Holdings.parse(result.stdout.partition("--rdev-held--\n")[2])
        return Checkout(Placed.LEFT_BEHIND, held=held)
    if result.returncode == Exit.ADD_FAILED and checkout_refused_elsewhere(result.stderr):
        return Checkout(Placed.BRANCH_ELSEWHERE)
    if not result.ok or not fields.get("commit"):
        # "start=" ends the checks: a script stopped before it never reached the worktree.
        step = "git worktree add" if "start" in fields else "the branch check"
        return Checkout(Placed.FAILED, detail=f"{step} failed with {result.describe()}")
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
    UNTOUCHED = "untouched"  # holds nothing, and removal was not asked for
    REFUSED = "refused"  # git refused to remove it
    FAILED = "failed"  # the state could not be read


@dataclass(frozen=True)
class Remove:
    removal: Removal
    held: Holdings | None = None
    detail: str = ""

    @property
    def changes(self) -> tuple[int, int, int] | None:
        return self.held.counts if self.held is not None else None


@dataclass(frozen=True)
class Push:
    pushed: bool
    commit: str | None
    detail: str = ""


def read_end(result: ExecResult) -> tuple[Push | None, Remove]:
    """Whether the push went through (None when none was asked), and what became of the worktree."""
    head, marked, rest = result.stdout.partition("--rdev-pushed--\n")
    fields = parse_fields(head)
    push: Push | None = None
    if "push_exit" in fields:
        code = fields["push_exit"]
        if code == "0":
            push = Push(True, fields.get("commit"))
        else:
            failed = ExecResult(int(code) if code.isdigit() else 1, "", result.stderr)
            detail = f"git push failed with {failed.describe()}"
            push = Push(False, fields.get("commit"), detail=detail)
    if result.ok and fields.get("removed") == "gone":
        return push, Remove(Removal.GONE)
    state, _, verdict = rest.partition("--rdev-verdict--\n")
    if not marked or (not result.ok and result.returncode != Exit.REMOVE_REFUSED):
        failed = ExecResult(result.returncode, "", result.stderr)
        return push, Remove(
            Removal.FAILED, detail=f"reading the worktree failed with {failed.describe()}"
        )
    held = Holdings.parse(state)
    if verdict.strip() in (Removal.KEPT, Removal.UNTOUCHED):
        return push, Remove(Removal(verdict.strip()), held)
    if result.returncode == Exit.REMOVE_REFUSED:
        return push, Remove(Removal.REFUSED, held, detail=result.describe())
    return push, Remove(Removal.REMOVED, held)


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
