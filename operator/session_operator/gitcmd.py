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
