"""git argv lists never let a user value become an option; parsers read git's output."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from session_operator import gitcmd

EVIL = ["--upload-pack=touch /tmp/pwn", "-c core.sshCommand=x", "-x", "$(id)"]
REPO, PATH = "/repo", "/sessions/s1"
# Options whose next argv element is their value (never parsed as an option): -C takes a
# path, -b the new branch. (-c would be config injection: never allowed.)
VALUE_OPTIONS = {"-C", "-b"}


def assert_only_safe(argv: list[str], values: list[str]) -> None:
    """Each value occurs only after '--', inside a refs/... path, or as an option's value."""
    assert all(isinstance(a, str) for a in argv)
    end = argv.index("--") if "--" in argv else len(argv)
    for value in values:
        seen = False
        for i, arg in enumerate(argv):
            if arg == value:
                seen = True
                assert i > end or argv[i - 1] in VALUE_OPTIONS, (value, argv)
            elif value in arg:
                seen = True
                assert arg.startswith("refs/") and arg.endswith("/" + value), (value, argv)
                assert i > end, (value, argv)
        assert seen, (value, argv)


def test_git_prefix_fixes_config() -> None:
    assert gitcmd.GIT[:1] == ["git"]
    assert "core.pager=cat" in gitcmd.GIT


@pytest.mark.parametrize("evil", EVIL)
def test_resolve_ref_puts_names_inside_refs_after_double_dash(evil: str) -> None:
    argv = gitcmd.resolve_ref(REPO, evil)
    assert argv[-4] == "--"
    assert argv[-3:] == [
        f"refs/remotes/origin/{evil}",
        f"refs/tags/{evil}",
        f"refs/heads/{evil}",
    ]
    assert_only_safe(argv, [evil])


@pytest.mark.parametrize("evil", EVIL)
def test_worktree_add_existing(evil: str) -> None:
    argv = gitcmd.worktree_add_existing(REPO, PATH, evil)
    assert argv[-3:] == ["--", PATH, evil]
    assert_only_safe(argv, [evil, PATH])


@pytest.mark.parametrize("evil", EVIL)
def test_worktree_add_new(evil: str) -> None:
    start = "refs/remotes/origin/" + evil
    argv = gitcmd.worktree_add_new(REPO, PATH, evil, start)
    assert argv[-3:] == ["--", PATH, start]
    # The new branch is the value of -b, which git never parses as an option.
    assert argv[argv.index(evil) - 1] == "-b"
    assert_only_safe(argv, [evil, PATH])


@pytest.mark.parametrize(
    "build",
    [
        lambda p: gitcmd.fetch(p),
        lambda p: gitcmd.default_branch(p),
        lambda p: gitcmd.worktree_list(p),
        lambda p: gitcmd.head_commit(p),
        lambda p: gitcmd.status(p),
        lambda p: gitcmd.unpushed(p),
        lambda p: gitcmd.worktree_remove(REPO, p),
    ],
)
@pytest.mark.parametrize("path", ["/w/-x", "--exec=x", "/w/a b"])
def test_paths_are_option_values_or_after_double_dash(
    build: Callable[[str], list[str]], path: str
) -> None:
    assert_only_safe(build(path), [path])


def test_worktree_remove_has_no_force() -> None:
    argv = gitcmd.worktree_remove(REPO, PATH)
    assert "--force" not in argv and "-f" not in argv
    assert argv[-2:] == ["--", PATH]


def test_status_and_unpushed_argv() -> None:
    assert gitcmd.status(PATH)[-4:] == ["status", "--porcelain=v1", "-z", "--untracked-files=all"]
    assert gitcmd.unpushed(PATH)[-5:] == ["rev-list", "--count", "HEAD", "--not", "--remotes"]


WORKTREES = """worktree /repo
HEAD 1111111111111111111111111111111111111111
branch refs/heads/main

worktree /sessions/s1
HEAD 2222222222222222222222222222222222222222
branch refs/heads/topic/x

worktree /sessions/detached
HEAD 3333333333333333333333333333333333333333
detached

worktree /sessions/locked
HEAD 4444444444444444444444444444444444444444
branch refs/heads/feature-a
locked reason here
"""


def test_parse_worktrees() -> None:
    trees = gitcmd.parse_worktrees(WORKTREES)
    assert trees == [
        gitcmd.Worktree("/repo", "main"),
        gitcmd.Worktree("/sessions/s1", "topic/x"),
        gitcmd.Worktree("/sessions/detached", None),
        gitcmd.Worktree("/sessions/locked", "feature-a"),
    ]


def test_parse_worktrees_without_trailing_blank_line() -> None:
    text = "worktree /a\nHEAD 1\nbranch refs/heads/x"
    assert gitcmd.parse_worktrees(text) == [gitcmd.Worktree("/a", "x")]
    assert gitcmd.parse_worktrees("") == []


def test_find_worktree_ignores_trailing_slash() -> None:
    trees = gitcmd.parse_worktrees(WORKTREES)
    assert gitcmd.find_worktree(trees, "/sessions/s1/") == gitcmd.Worktree(
        "/sessions/s1", "topic/x"
    )
    assert gitcmd.find_worktree(trees, "/sessions/s") is None


@pytest.mark.parametrize(
    ("output", "uncommitted", "untracked"),
    [
        ("", 0, 0),
        (" M a.txt\0", 1, 0),
        ("M  a.txt\0MM b.txt\0 D c\0A  d\0", 4, 0),
        ("?? new.txt\0?? dir/other\0", 0, 2),
        ("!! ignored\0", 0, 0),
        # A rename carries the original path as a second entry.
        ("R  new name.txt\0old name.txt\0?? u\0", 1, 1),
        ("RM new\0?? looks-untracked-but-is-the-old-path\0 M x\0", 2, 0),
        ("C  copy\0orig\0", 1, 0),
        (" M with\nnewline\0", 1, 0),
    ],
)
def test_parse_status(output: str, uncommitted: int, untracked: int) -> None:
    assert gitcmd.parse_status(output) == gitcmd.StatusCounts(uncommitted, untracked)


def test_checkout_refused_elsewhere() -> None:
    assert gitcmd.checkout_refused_elsewhere("fatal: 'main' is already checked out at '/repo'")
    assert gitcmd.checkout_refused_elsewhere("fatal: 'main' is already used by worktree at '/repo'")
    assert not gitcmd.checkout_refused_elsewhere("fatal: '/p' already exists")


@pytest.mark.parametrize(
    ("stderr", "path_exists", "branch_exists"),
    [
        ("Preparing worktree (checking out 'x')\nfatal: '/s/s1' already exists", True, False),
        # The session (so the path) may be named after a branch...
        ("fatal: '/s/fix-branch-x' already exists", True, False),
        # ...and git announces a new branch before finding the path taken.
        ("Preparing worktree (new branch 'x')\nfatal: '/s/s1' already exists", True, False),
        (
            "Preparing worktree (new branch 'x')\nfatal: a branch named 'x' already exists",
            False,
            True,
        ),
        ("fatal: invalid reference: x", False, False),
    ],
)
def test_error_classifiers(stderr: str, path_exists: bool, branch_exists: bool) -> None:
    assert gitcmd.path_exists_error(stderr) is path_exists
    assert gitcmd.branch_exists_error(stderr) is branch_exists


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_evil_values_reach_real_git_as_names(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, timeout=30)
    subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.email=a@b",
            "-c",
            "user.name=a",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "init",
        ],
        check=True,
        timeout=30,
    )
    marker = tmp_path / "pwn"
    evil = f"--upload-pack=touch {marker}"
    found = subprocess.run(
        gitcmd.resolve_ref(str(repo), evil), capture_output=True, text=True, timeout=30
    )
    assert found.returncode == 0 and found.stdout == ""
    added = subprocess.run(
        gitcmd.worktree_add_existing(str(repo), str(tmp_path / "wt"), "-x"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert added.returncode != 0
    assert "unknown switch" not in added.stderr and "usage:" not in added.stderr
    assert not marker.exists()
    new = subprocess.run(
        gitcmd.worktree_add_new(str(repo), str(tmp_path / "wt2"), "topic/x", "main"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert new.returncode == 0, new.stderr
    listed = subprocess.run(
        gitcmd.worktree_list(str(repo)), capture_output=True, text=True, timeout=30, check=True
    )
    tree = gitcmd.find_worktree(gitcmd.parse_worktrees(listed.stdout), str(tmp_path / "wt2"))
    assert tree is not None and tree.branch == "topic/x"
