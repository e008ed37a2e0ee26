"""The git steps: argv safety, and each script run for real against a local repository.

The scripts are the ones the operator execs into project pods; here they run
on this machine with ``sh``, exactly as kwok runs them for the integration tests.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from session_operator import gitcmd
from session_operator.execresult import ExecResult

# Names git accepts (so the API server does too) that a shell or git would act on.
EVIL = [
    "--upload-pack=touch${IFS}PWNED",
    "-c${IFS}core.sshCommand=touch${IFS}PWNED",
    "x$(touch${IFS}PWNED)",
    "x`touch${IFS}PWNED`;touch${IFS}PWNED|true",
]
ENV = ["-c", "user.email=t@example.com", "-c", "user.name=t"]


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", *ENV, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=True
    )
    return out.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> dict[str, Path]:
    origin, seed, clone = tmp_path / "origin.git", tmp_path / "seed", tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(seed)], check=True)
    (seed / "a.txt").write_text("a\n")
    git(seed, "add", "a.txt")
    git(seed, "commit", "-q", "-m", "a")
    git(seed, "checkout", "-q", "-b", "feature")
    git(seed, "commit", "-q", "--allow-empty", "-m", "f")
    git(seed, "remote", "add", "origin", str(origin))
    git(seed, "push", "-q", "origin", "--all")
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
    (tmp_path / "sessions").mkdir()
    return {"repo": clone, "sessions": tmp_path / "sessions", "base": tmp_path}


@pytest.mark.parametrize(
    "argv",
    [
        gitcmd.precheck("/repo-x", EVIL[0], True, EVIL[1]),
        gitcmd.checkout("/repo-x", "/sess-x/x", EVIL[2], EVIL[3]),
        gitcmd.remove("/repo-x", "/sess-x/x", "/sess-x/.rdev/x"),
        gitcmd.changes("/sess-x/x"),
    ],
)
def test_scripts_are_constant_and_values_positional(argv: list[str]) -> None:
    assert argv[:2] == ["sh", "-c"]
    script = argv[2]
    assert script in {
        gitcmd.PRECHECK_SCRIPT,
        gitcmd.CHECKOUT_SCRIPT,
        gitcmd.REMOVE_SCRIPT,
        gitcmd.CHANGES_SCRIPT,
    }
    assert argv[3] == "sh"  # $0; every value follows as $1, $2, ...
    for value in argv[4:]:
        if value in EVIL or value.startswith("/"):
            assert value not in script


def test_precheck_existing_branch(repo: dict[str, Path]) -> None:
    out = run(gitcmd.precheck(str(repo["repo"]), "feature", False, None), repo["base"])
    assert out.returncode == 0, out.stderr
    assert gitcmd.parse_fields(out.stdout) == {"start": ""}


def test_precheck_missing_branch(repo: dict[str, Path]) -> None:
    out = run(gitcmd.precheck(str(repo["repo"]), "nope", False, None), repo["base"])
    assert out.returncode == 20


def test_precheck_new_branch_starts_at_origin_default(repo: dict[str, Path]) -> None:
    out = run(gitcmd.precheck(str(repo["repo"]), "topic/x", True, None), repo["base"])
    assert out.returncode == 0, out.stderr
    assert gitcmd.parse_fields(out.stdout) == {"from": "main", "start": "refs/remotes/origin/main"}


def test_precheck_missing_from_ref(repo: dict[str, Path]) -> None:
    out = run(gitcmd.precheck(str(repo["repo"]), "topic/x", True, "gone"), repo["base"])
    assert out.returncode == 21
    assert gitcmd.parse_fields(out.stdout)["from"] == "gone"


def test_precheck_fetch_failure(tmp_path: Path) -> None:
    out = run(gitcmd.precheck(str(tmp_path / "none"), "feature", False, None), tmp_path)
    assert out.returncode == 10


def _checkout(repo: dict[str, Path], name: str, branch: str, start: str | None):
    path = repo["sessions"] / name
    out = run(gitcmd.checkout(str(repo["repo"]), str(path), branch, start), repo["base"])
    head, _, state = out.stdout.partition("--rdev-changes--\n")
    return out, gitcmd.parse_fields(head), state, path


def test_checkout_existing_branch_is_idempotent(repo: dict[str, Path]) -> None:
    out, fields, state, path = _checkout(repo, "s1", "feature", None)
    assert out.returncode == 0, out.stderr
    assert fields["added"] == "yes"
    assert fields["commit"] == git(path, "rev-parse", "HEAD")
    assert git(path, "rev-parse", "--abbrev-ref", "HEAD") == "feature"
    assert gitcmd.parse_changes(state) == (0, 0, 0)
    again, fields2, _, _ = _checkout(repo, "s1", "feature", None)
    assert again.returncode == 0 and fields2["added"] == "no"
    assert fields2["commit"] == fields["commit"]


def test_checkout_new_branch_resumes_after_an_interrupted_attempt(repo: dict[str, Path]) -> None:
    # An earlier attempt created the branch but stopped before the worktree.
    git(repo["repo"], "branch", "topic/y", "origin/main")
    out, _, _, path = _checkout(repo, "s2", "topic/y", "refs/remotes/origin/main")
    assert out.returncode == 0, out.stderr
    assert git(path, "rev-parse", "--abbrev-ref", "HEAD") == "topic/y"


def test_checkout_path_taken_by_something_else(repo: dict[str, Path]) -> None:
    (repo["sessions"] / "s3").mkdir()
    out, _, _, _ = _checkout(repo, "s3", "feature", None)
    assert out.returncode == 30


def test_checkout_path_holds_another_branch(repo: dict[str, Path]) -> None:
    _checkout(repo, "s4", "feature", None)
    out, fields, _, _ = _checkout(repo, "s4", "topic/z", "refs/remotes/origin/main")
    assert out.returncode == 31 and fields["holds"] == "feature"


def test_checkout_branch_in_use_elsewhere(repo: dict[str, Path]) -> None:
    _checkout(repo, "s5", "feature", None)
    out, _, _, _ = _checkout(repo, "s6", "feature", None)
    assert out.returncode == 40
    assert gitcmd.checkout_refused_elsewhere(out.stderr)


@pytest.mark.parametrize("evil", EVIL[2:])
def test_shell_and_option_lookalikes_stay_names(repo: dict[str, Path], evil: str) -> None:
    out, _, _, path = _checkout(repo, "s7", evil, "refs/remotes/origin/main")
    assert out.returncode == 0, out.stderr
    assert git(path, "rev-parse", "--abbrev-ref", "HEAD") == evil
    for folder in (repo["base"], repo["repo"], repo["sessions"], path):
        assert not (folder / "PWNED").exists()


def test_option_lookalike_is_not_an_option_to_precheck(repo: dict[str, Path]) -> None:
    out = run(gitcmd.precheck(str(repo["repo"]), EVIL[0], False, None), repo["base"])
    assert out.returncode == 20  # looked up as a branch name, not run as --upload-pack
    assert not (repo["base"] / "PWNED").exists()


def test_remove_keeps_work_and_removes_clean_worktrees(repo: dict[str, Path]) -> None:
    _, _, _, dirty = _checkout(repo, "d", "topic/d", "refs/remotes/origin/main")
    (dirty / "a.txt").write_text("changed\n")
    (dirty / "new.txt").write_text("new\n")
    run_dir = repo["sessions"] / ".rdev" / "d"
    run_dir.mkdir(parents=True)
    out = run(gitcmd.remove(str(repo["repo"]), str(dirty), str(run_dir)), repo["base"])
    state, _, verdict = out.stdout.partition("\n--rdev-verdict--\n")
    assert out.returncode == 0 and verdict.strip() == "kept"
    assert gitcmd.parse_changes(state) == (1, 1, 0)
    assert (dirty / "new.txt").exists()

    _, _, _, ahead = _checkout(repo, "u", "topic/u", "refs/remotes/origin/main")
    git(ahead, "commit", "-q", "--allow-empty", "-m", "local")
    out = run(gitcmd.remove(str(repo["repo"]), str(ahead), str(run_dir)), repo["base"])
    assert out.stdout.strip().endswith("kept") and ahead.exists()

    _, _, _, clean = _checkout(repo, "c", "topic/c", "refs/remotes/origin/main")
    out = run(gitcmd.remove(str(repo["repo"]), str(clean), str(run_dir)), repo["base"])
    assert out.returncode == 0 and out.stdout.strip().endswith("removed")
    assert not clean.exists() and not run_dir.exists()
    assert git(repo["repo"], "rev-parse", "--verify", "refs/heads/topic/c")  # branch stays


def test_changes_counts(repo: dict[str, Path]) -> None:
    _, _, _, path = _checkout(repo, "w", "topic/w", "refs/remotes/origin/main")
    (path / "x.txt").write_text("x\n")
    git(path, "add", "x.txt")
    git(path, "commit", "-q", "-m", "x")
    (path / "a.txt").write_text("edited\n")
    (path / "u1").write_text("u\n")
    out = run(gitcmd.changes(str(path)), repo["base"])
    assert out.returncode == 0
    assert gitcmd.parse_changes(out.stdout) == (1, 1, 1)


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


def test_precheck_refuses_a_tag_given_as_branch(repo: dict[str, Path]) -> None:
    git(repo["repo"], "tag", "v1.0", "origin/feature")
    out = run(gitcmd.precheck(str(repo["repo"]), "v1.0", False, None), repo["base"])
    checked = gitcmd.read_precheck(ExecResult(out.returncode, out.stdout, out.stderr))
    assert checked.found == gitcmd.Found.NOT_A_BRANCH and checked.named == "tag"


def test_precheck_refuses_a_commit_given_as_branch(repo: dict[str, Path]) -> None:
    sha = git(repo["repo"], "rev-parse", "origin/feature")
    for name in (sha, sha[:12], "origin/HEAD"):
        out = run(gitcmd.precheck(str(repo["repo"]), name, False, None), repo["base"])
        checked = gitcmd.read_precheck(ExecResult(out.returncode, out.stdout, out.stderr))
        assert checked.found == gitcmd.Found.NOT_A_BRANCH, name
        assert checked.named == "commit"


def test_a_tag_may_start_a_new_branch(repo: dict[str, Path]) -> None:
    git(repo["repo"], "tag", "v1.0", "origin/feature")
    out = run(gitcmd.precheck(str(repo["repo"]), "topic/x", True, "v1.0"), repo["base"])
    assert out.returncode == 0, out.stderr
    assert gitcmd.parse_fields(out.stdout)["start"] == "refs/tags/v1.0"


def test_failures_say_the_exit_code_and_the_last_lines(tmp_path: Path) -> None:
    out = run(gitcmd.precheck(str(tmp_path / "none"), "feature", False, None), tmp_path)
    checked = gitcmd.read_precheck(ExecResult(out.returncode, out.stdout, out.stderr))
    assert checked.found == gitcmd.Found.FAILED
    assert checked.detail.startswith("git fetch failed with exit code 10: ")
    assert "fatal" in checked.detail or "No such file" in checked.detail
    assert ExecResult(3, "", "").describe() == "exit code 3"


def _worktree_with_a_commit(repo: dict[str, Path], branch: str) -> Path:
    path = repo["sessions"] / "s"
    run(
        gitcmd.checkout(str(repo["repo"]), str(path), branch, "refs/remotes/origin/main"),
        repo["base"],
    )
    (path / "done.txt").write_text("x\n")
    git(path, "add", "done.txt")
    git(path, *ENV, "commit", "-q", "-m", "done")
    return path


def test_push_sends_commits_only(repo: dict[str, Path]) -> None:
    path = _worktree_with_a_commit(repo, "topic/p")
    (path / "draft.txt").write_text("not committed\n")
    out = run(gitcmd.push_and_changes(str(path), "", "topic/p"), repo["base"])
    pushed, workspace = gitcmd.read_push_and_changes(
        ExecResult(out.returncode, out.stdout, out.stderr)
    )
    assert pushed.pushed and pushed.commit == git(path, "rev-parse", "HEAD")
    origin = repo["base"] / "origin.git"
    assert git(origin, "rev-parse", "refs/heads/topic/p") == pushed.commit
    assert (path / "draft.txt").exists()
    # Read after the push: nothing unpushed, the draft still untracked.
    assert workspace is not None and workspace.counts == (0, 1, 0)


def test_rejected_push_gives_gits_reason_and_still_reads_the_workspace(
    repo: dict[str, Path],
) -> None:
    path = _worktree_with_a_commit(repo, "topic/r")
    hook = repo["base"] / "origin.git" / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'closed for the night' >&2\nexit 1\n")
    hook.chmod(0o755)
    out = run(gitcmd.push_and_changes(str(path), "", "topic/r"), repo["base"])
    pushed, workspace = gitcmd.read_push_and_changes(
        ExecResult(out.returncode, out.stdout, out.stderr)
    )
    assert not pushed.pushed and pushed.commit == git(path, "rev-parse", "HEAD")
    assert pushed.detail.startswith("git push failed with exit code 1: ")
    assert "closed for the night" in pushed.detail
    assert workspace is not None and workspace.counts == (0, 0, 1)


def test_activity_mark_changes_with_any_activity(repo: dict[str, Path]) -> None:
    path = repo["sessions"] / "s"
    run(gitcmd.checkout(str(repo["repo"]), str(path), "feature", None), repo["base"])
    run_dir = repo["sessions"] / ".rdev" / "s"
    run_dir.mkdir(parents=True)

    def mark() -> str:
        out = run(gitcmd.changes(str(path), str(run_dir)), repo["base"])
        workspace = gitcmd.read_changes(ExecResult(out.returncode, out.stdout, out.stderr))
        assert workspace is not None
        return workspace.activity

    first = mark()
    assert first and mark() == first  # nothing happened: the same mark
    (path / "a.txt").write_text("1\n")
    second = mark()
    assert second != first
    (path / "a.txt").write_text("22\n")  # already untracked, changed again
    third = mark()
    assert third != second
    (run_dir / "webui.log").write_text("GET /\n")  # web UI output
    assert mark() != third
