"""The git steps: argv safety, and each script run for real against a local repository.

The scripts are the ones the operator execs into project pods; here they run
on this machine with ``sh``, exactly as kwok runs them for the integration tests.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from rdev_api.execresult import ExecResult
from session_operator import gitcmd

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


def precheck(
    repo: str, branch: str, new: bool, from_ref: str | None, *, own: bool = False
) -> list[str]:
    """The checkout exec at a fresh path beside ``repo``: its findings come before any change.

    ``own``: this Session's mark is in its run folder (an earlier attempt of its own).
    """
    base = Path(repo).parent / "sessions"
    run_dir = base / ".rdev" / "chk"
    if own:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "session-uid").write_text("uid-chk\n")
    return gitcmd.checkout(
        repo,
        str(base / "chk"),
        branch,
        new=new,
        from_ref=from_ref,
        run_dir=str(run_dir),
        uid="uid-chk",
    )


def head_fields(stdout: str) -> dict[str, str]:
    """The key=value lines before the workspace counts."""
    return gitcmd.parse_fields(stdout.partition("--rdev-changes--\n")[0])


@pytest.mark.parametrize(
    "argv",
    [
        gitcmd.checkout(
            "/repo-x",
            "/sess-x/x",
            EVIL[0],
            new=True,
            from_ref=EVIL[1],
            run_dir="/sess-x/.rdev/x",
            uid="u",
        ),
        gitcmd.checkout(
            "/repo-x",
            "/sess-x/x",
            EVIL[2],
            new=False,
            from_ref=None,
            run_dir="/sess-x/.rdev/x",
            uid="u",
        ),
        gitcmd.end("/repo-x", "/sess-x/x", "/sess-x/.rdev/x", EVIL[2]),
        gitcmd.changes("/sess-x/x"),
    ],
)
def test_scripts_are_constant_and_values_positional(argv: list[str]) -> None:
    assert argv[:2] == ["sh", "-c"]
    script = argv[2]
    assert script in {
        gitcmd.CHECKOUT_SCRIPT,
        gitcmd.END_SCRIPT,
        gitcmd.CHANGES_SCRIPT,
    }
    assert argv[3] == "sh"  # $0; every value follows as $1, $2, ...
    for value in argv[4:]:
        if value in EVIL or value.startswith("/"):
            assert value not in script


def test_precheck_existing_branch(repo: dict[str, Path]) -> None:
    out = run(precheck(str(repo["repo"]), "feature", False, None), repo["base"])
    assert out.returncode == 0, out.stderr
    commit = git(repo["sessions"] / "chk", "rev-parse", "HEAD")
    assert head_fields(out.stdout) == {"start": "", "added": "yes", "commit": commit}


def test_precheck_missing_branch(repo: dict[str, Path]) -> None:
    out = run(precheck(str(repo["repo"]), "nope", False, None), repo["base"])
    assert out.returncode == 20


def test_precheck_new_branch_starts_at_origin_default(repo: dict[str, Path]) -> None:
    out = run(precheck(str(repo["repo"]), "topic/x", True, None), repo["base"])
    assert out.returncode == 0, out.stderr
    fields = head_fields(out.stdout)
    assert fields.pop("commit") == git(repo["repo"], "rev-parse", "origin/main")
    assert fields == {"from": "main", "start": "refs/remotes/origin/main", "added": "yes"}


def test_precheck_missing_from_ref(repo: dict[str, Path]) -> None:
    out = run(precheck(str(repo["repo"]), "topic/x", True, "gone"), repo["base"])
    assert out.returncode == 21
    assert gitcmd.parse_fields(out.stdout)["from"] == "gone"


def test_precheck_fetch_failure(tmp_path: Path) -> None:
    out = run(precheck(str(tmp_path / "none"), "feature", False, None), tmp_path)
    assert out.returncode == 10


def _checkout(
    repo: dict[str, Path],
    name: str,
    branch: str,
    from_ref: str | None,
    *,
    new: bool | None = None,
    uid: str = "uid-1",
    own: bool = False,
):
    """Check ``branch`` out at ``name``: as newBranch from ``from_ref`` when one is given.

    ``own``: the run folder already holds this Session's mark (an earlier attempt).
    """
    path = repo["sessions"] / name
    run_dir = repo["sessions"] / ".rdev" / name
    if own:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "session-uid").write_text(f"{uid}\n")
    argv = gitcmd.checkout(
        str(repo["repo"]),
        str(path),
        branch,
        new=from_ref is not None if new is None else new,
        from_ref=from_ref,
        run_dir=str(run_dir),
        uid=uid,
    )
    out = run(argv, repo["base"])
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
    # An earlier attempt of this Session created the branch but stopped before the worktree.
    git(repo["repo"], "branch", "topic/y", "origin/main")
    out, _, _, path = _checkout(repo, "s2", "topic/y", "main", own=True)
    assert out.returncode == 0, out.stderr
    assert git(path, "rev-parse", "--abbrev-ref", "HEAD") == "topic/y"


def test_checkout_new_branch_never_takes_over_someone_elses_branch(
    repo: dict[str, Path],
) -> None:
    git(repo["repo"], "branch", "topic/theirs", "origin/main")
    before = git(repo["repo"], "for-each-ref", "refs/heads")
    out, _, _, path = _checkout(repo, "s2b", "topic/theirs", "main")
    assert out.returncode == gitcmd.Exit.BRANCH_EXISTS  # found before anything is made
    assert not path.exists() and not (repo["sessions"] / ".rdev" / "s2b").exists()
    assert git(repo["repo"], "for-each-ref", "refs/heads") == before


@pytest.mark.parametrize(
    ("local", "remote", "where"),
    [(True, False, ("local",)), (False, True, ("origin",)), (True, True, ("local", "origin"))],
)
def test_precheck_new_branch_that_exists_stalls(
    repo: dict[str, Path], local: bool, remote: bool, where: tuple[str, ...]
) -> None:
    seed = repo["base"] / "seed"
    if remote:
        git(seed, "push", "-q", "origin", "main:refs/heads/topic/taken")
    if local:
        git(repo["repo"], "branch", "topic/taken", "origin/main")
    before = git(repo["repo"], "for-each-ref", "refs/heads")
    for own in (False, True):
        argv = precheck(str(repo["repo"]), "topic/taken", True, None, own=own)
        out = run(argv, repo["base"])
        checked = gitcmd.read_precheck(ExecResult(out.returncode, out.stdout, out.stderr))
        if own and where == ("local",):
            # The one exception: this Session made the branch itself.
            assert checked.found == gitcmd.Found.OK, out.stderr
        else:
            assert checked.found == gitcmd.Found.EXISTS and checked.where == where
    assert git(repo["repo"], "for-each-ref", "refs/heads") == before  # nothing changed


@pytest.mark.parametrize(
    ("branch", "new", "from_ref", "code"),
    [
        ("nope", False, None, gitcmd.Exit.BRANCH_MISSING),
        ("v1.0", False, None, gitcmd.Exit.NOT_A_BRANCH),
        ("topic/x", True, "gone", gitcmd.Exit.FROM_MISSING),
        ("feature", True, None, gitcmd.Exit.BRANCH_EXISTS),
    ],
)
def test_a_finding_leaves_nothing_in_the_pod(
    repo: dict[str, Path], branch: str, new: bool, from_ref: str | None, code: int
) -> None:
    """The checkout's one exec decides before it changes anything: no worktree, no branch,
    no run folder, when the Session stalls on what it found."""
    git(repo["repo"], "tag", "v1.0", "origin/feature")
    refs = git(repo["repo"], "for-each-ref", "refs/heads")
    trees = git(repo["repo"], "worktree", "list", "--porcelain")
    out = run(precheck(str(repo["repo"]), branch, new, from_ref), repo["base"])
    assert out.returncode == code, out.stderr
    assert list(repo["sessions"].iterdir()) == []
    assert git(repo["repo"], "for-each-ref", "refs/heads") == refs
    assert git(repo["repo"], "worktree", "list", "--porcelain") == trees


def test_a_worktree_left_by_another_session_is_adopted_only_when_empty(
    repo: dict[str, Path],
) -> None:
    out, _, _, path = _checkout(repo, "re", "feature", None, uid="old")
    assert out.returncode == 0, out.stderr
    (path / "draft.txt").write_text("work\n")
    out, _, _, _ = _checkout(repo, "re", "feature", None, uid="new")
    done = gitcmd.read_checkout(ExecResult(out.returncode, out.stdout, out.stderr))
    assert done.placed == gitcmd.Placed.LEFT_BEHIND
    assert done.held is not None and done.held.untracked == 1
    assert (path / "draft.txt").read_text() == "work\n"
    # Its own Session finds it again; the other one still does not.
    out, _, _, _ = _checkout(repo, "re", "feature", None, uid="old")
    assert out.returncode == 0, out.stderr
    out, _, _, _ = _checkout(repo, "re", "feature", None, uid="new")
    assert out.returncode == 32
    (path / "draft.txt").unlink()
    out, _, _, _ = _checkout(repo, "re", "feature", None, uid="newer")
    assert out.returncode == 0, out.stderr  # empty: adopted


def test_checkout_path_taken_by_something_else(repo: dict[str, Path]) -> None:
    (repo["sessions"] / "s3").mkdir()
    out, _, _, _ = _checkout(repo, "s3", "feature", None)
    assert out.returncode == 30


def test_checkout_path_holds_another_branch(repo: dict[str, Path]) -> None:
    _checkout(repo, "s4", "feature", None)
    out, fields, _, _ = _checkout(repo, "s4", "topic/z", "main")
    assert out.returncode == 31 and fields["holds"] == "feature"


def test_checkout_branch_in_use_elsewhere(repo: dict[str, Path]) -> None:
    _checkout(repo, "s5", "feature", None)
    out, _, _, _ = _checkout(repo, "s6", "feature", None)
    assert out.returncode == 40
    assert gitcmd.checkout_refused_elsewhere(out.stderr)


@pytest.mark.parametrize("evil", EVIL[2:])
def test_shell_and_option_lookalikes_stay_names(repo: dict[str, Path], evil: str) -> None:
    out, _, _, path = _checkout(repo, "s7", evil, "main")
    assert out.returncode == 0, out.stderr
    assert git(path, "rev-parse", "--abbrev-ref", "HEAD") == evil
    for folder in (repo["base"], repo["repo"], repo["sessions"], path):
        assert not (folder / "PWNED").exists()


def test_option_lookalike_is_not_an_option_to_precheck(repo: dict[str, Path]) -> None:
    out = run(precheck(str(repo["repo"]), EVIL[0], False, None), repo["base"])
    assert out.returncode == 20  # looked up as a branch name, not run as --upload-pack
    assert not (repo["base"] / "PWNED").exists()


def _end(repo: dict[str, Path], path: Path, push: str | None = None, *, remove: bool = True):
    run_dir = repo["sessions"] / ".rdev" / path.name
    run_dir.mkdir(parents=True, exist_ok=True)
    argv = gitcmd.end(str(repo["repo"]), str(path), str(run_dir), push, remove=remove)
    out = run(argv, repo["base"])
    return out, gitcmd.read_end(ExecResult(out.returncode, out.stdout, out.stderr))


def test_end_keeps_work_and_removes_clean_worktrees(repo: dict[str, Path]) -> None:
    _, _, _, dirty = _checkout(repo, "d", "topic/d", "main")
    (dirty / "a.txt").write_text("changed\n")
    (dirty / "new.txt").write_text("new\n")
    _, (push, removed) = _end(repo, dirty)
    assert push is None and removed.removal == gitcmd.Removal.KEPT
    assert removed.changes == (1, 1, 0)
    assert removed.held is not None
    assert removed.held.describe() == "1 uncommitted file, 1 untracked file"
    assert (dirty / "new.txt").exists()

    _, _, _, ahead = _checkout(repo, "u", "topic/u", "main")
    git(ahead, "commit", "-q", "--allow-empty", "-m", "local")
    _, (_, removed) = _end(repo, ahead)
    assert removed.removal == gitcmd.Removal.KEPT and ahead.exists()
    assert removed.held is not None and removed.held.describe() == "1 unpushed commit"

    _, _, _, clean = _checkout(repo, "c", "topic/c", "main")
    _, (_, untouched) = _end(repo, clean, remove=False)  # the end of a session keeps it
    assert untouched.removal == gitcmd.Removal.UNTOUCHED and clean.exists()
    out, (_, removed) = _end(repo, clean)
    assert out.returncode == 0 and removed.removal == gitcmd.Removal.REMOVED, out.stderr
    assert not clean.exists() and not (repo["sessions"] / ".rdev" / "c").exists()
    assert git(repo["repo"], "rev-parse", "--verify", "refs/heads/topic/c")  # branch stays
    _, (_, gone) = _end(repo, clean)
    assert gone.removal == gitcmd.Removal.GONE


def _ignore(path: Path) -> None:
    (path / ".gitignore").write_text(".env\nbuild/\n")
    git(path, "add", ".gitignore")
    git(path, "commit", "-q", "-m", "ignore")
    git(path, "push", "-q", "origin", "HEAD")


def test_ignored_files_are_work(repo: dict[str, Path]) -> None:
    _, _, _, path = _checkout(repo, "i", "topic/i", "main")
    _ignore(path)
    (path / ".env").write_text("SECRET=1\n")
    (path / "build").mkdir()
    (path / "build" / "notes.txt").write_text("notes\n")
    _, (_, removed) = _end(repo, path)
    assert removed.removal == gitcmd.Removal.KEPT
    assert removed.held is not None
    assert removed.held.describe() == "2 ignored files (.env, build/)"
    assert (path / ".env").exists() and (path / "build" / "notes.txt").exists()


def test_ignored_names_with_tabs_and_newlines_count_once(repo: dict[str, Path]) -> None:
    _, _, _, path = _checkout(repo, "j", "topic/j", "main")
    (path / ".gitignore").write_text("*.log\n")
    git(path, "add", ".gitignore")
    git(path, "commit", "-q", "-m", "ignore")
    git(path, "push", "-q", "origin", "HEAD")
    for name in ("a\tb.log", "c\nd.log", "e.log", "f.log"):
        (path / name).write_text("x\n")
    _, (_, removed) = _end(repo, path)
    assert removed.removal == gitcmd.Removal.KEPT and removed.held is not None
    assert removed.held.ignored == 4 and len(removed.held.ignored_names) == 3
    assert removed.held.describe().startswith("4 ignored files (")


@pytest.mark.parametrize("flag", ["--skip-worktree", "--assume-unchanged"])
def test_edits_hidden_from_status_are_work(repo: dict[str, Path], flag: str) -> None:
    _, _, _, path = _checkout(repo, "h", "topic/h", "main")
    git(path, "update-index", flag, "a.txt")
    _, (_, removed) = _end(repo, path)  # flagged but unchanged: nothing to lose
    assert removed.removal == gitcmd.Removal.REMOVED
    _, _, _, path = _checkout(repo, "h2", "topic/h2", "main")
    git(path, "update-index", flag, "a.txt")
    (path / "a.txt").write_text("hidden edit\n")
    assert git(path, "status", "--porcelain") == ""  # invisible to status
    _, (_, removed) = _end(repo, path)
    assert removed.removal == gitcmd.Removal.KEPT
    assert removed.held is not None and removed.held.describe() == "1 hidden edit (a.txt)"
    assert (path / "a.txt").read_text() == "hidden edit\n"


def test_stashes_made_in_the_worktree_are_work(repo: dict[str, Path]) -> None:
    _, _, _, other = _checkout(repo, "o", "topic/o", "main")
    (other / "a.txt").write_text("other\n")
    git(other, "stash", "-q")  # a stash of another branch does not hold this one
    _, _, _, path = _checkout(repo, "st", "topic/st", "main")
    (path / "a.txt").write_text("stashed\n")
    git(path, "stash", "-q")
    _, (_, removed) = _end(repo, path)
    assert removed.removal == gitcmd.Removal.KEPT
    assert removed.held is not None and removed.held.describe() == "1 stash"
    _, (_, removed) = _end(repo, other)
    assert removed.removal == gitcmd.Removal.KEPT
    assert removed.held is not None and removed.held.stashes == 1


def test_an_unreadable_worktree_is_never_removed(repo: dict[str, Path]) -> None:
    _, _, _, path = _checkout(repo, "b", "topic/b", "main")
    (path / ".git").write_text("gitdir: /nowhere\n")  # git cannot read it
    out, (_, removed) = _end(repo, path)
    assert removed.removal == gitcmd.Removal.FAILED, out.stdout
    assert path.exists()


def test_changes_counts(repo: dict[str, Path]) -> None:
    _, _, _, path = _checkout(repo, "w", "topic/w", "main")
    (path / "x.txt").write_text("x\n")
    git(path, "add", "x.txt")
    git(path, "commit", "-q", "-m", "x")
    (path / "a.txt").write_text("edited\n")
    (path / "u1").write_text("u\n")
    (path / "with\nnewline").write_text("u\n")
    git(path, "mv", "x.txt", "y.txt")  # a rename counts once per path git lists
    out = run(gitcmd.changes(str(path)), repo["base"])
    assert out.returncode == 0, out.stderr
    assert gitcmd.parse_changes(out.stdout) == (3, 2, 1)
    assert len(out.stdout) < 400  # counts, not listings


def test_checkout_refused_elsewhere() -> None:
    assert gitcmd.checkout_refused_elsewhere("fatal: 'main' is already checked out at '/repo'")
    assert gitcmd.checkout_refused_elsewhere("fatal: 'main' is already used by worktree at '/repo'")
    assert not gitcmd.checkout_refused_elsewhere("fatal: '/p' already exists")


def test_precheck_refuses_a_tag_given_as_branch(repo: dict[str, Path]) -> None:
    git(repo["repo"], "tag", "v1.0", "origin/feature")
    out = run(precheck(str(repo["repo"]), "v1.0", False, None), repo["base"])
    checked = gitcmd.read_precheck(ExecResult(out.returncode, out.stdout, out.stderr))
    assert checked.found == gitcmd.Found.NOT_A_BRANCH and checked.named == "tag"


def test_precheck_refuses_a_commit_given_as_branch(repo: dict[str, Path]) -> None:
    sha = git(repo["repo"], "rev-parse", "origin/feature")
    for name in (sha, sha[:12], "origin/HEAD"):
        out = run(precheck(str(repo["repo"]), name, False, None), repo["base"])
        checked = gitcmd.read_precheck(ExecResult(out.returncode, out.stdout, out.stderr))
        assert checked.found == gitcmd.Found.NOT_A_BRANCH, name
        assert checked.named == "commit"


def test_a_tag_may_start_a_new_branch(repo: dict[str, Path]) -> None:
    git(repo["repo"], "tag", "v1.0", "origin/feature")
    out = run(precheck(str(repo["repo"]), "topic/x", True, "v1.0"), repo["base"])
    assert out.returncode == 0, out.stderr
    assert head_fields(out.stdout)["start"] == "refs/tags/v1.0"


def test_failures_say_the_exit_code_and_the_last_lines(tmp_path: Path) -> None:
    out = run(precheck(str(tmp_path / "none"), "feature", False, None), tmp_path)
    checked = gitcmd.read_precheck(ExecResult(out.returncode, out.stdout, out.stderr))
    assert checked.found == gitcmd.Found.FAILED
    assert checked.detail.startswith("git fetch failed with exit code 10: ")
    assert "fatal" in checked.detail or "No such file" in checked.detail
    assert ExecResult(3, "", "").describe() == "exit code 3"


def _worktree_with_a_commit(repo: dict[str, Path], branch: str) -> Path:
    _, _, _, path = _checkout(repo, "s", branch, "main")
    (path / "done.txt").write_text("x\n")
    git(path, "add", "done.txt")
    git(path, *ENV, "commit", "-q", "-m", "done")
    return path


def test_push_sends_commits_only(repo: dict[str, Path]) -> None:
    path = _worktree_with_a_commit(repo, "topic/p")
    (path / "draft.txt").write_text("not committed\n")
    _, (pushed, removed) = _end(repo, path, "topic/p", remove=False)
    assert pushed is not None
    assert pushed.pushed and pushed.commit == git(path, "rev-parse", "HEAD")
    origin = repo["base"] / "origin.git"
    assert git(origin, "rev-parse", "refs/heads/topic/p") == pushed.commit
    assert (path / "draft.txt").exists()
    # Read after the push: nothing unpushed, the draft still untracked, so kept.
    assert removed.removal == gitcmd.Removal.KEPT and removed.changes == (0, 1, 0)


def test_rejected_push_gives_gits_reason_and_still_reads_the_workspace(
    repo: dict[str, Path],
) -> None:
    path = _worktree_with_a_commit(repo, "topic/r")
    hook = repo["base"] / "origin.git" / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'closed for the night' >&2\nexit 1\n")
    hook.chmod(0o755)
    _, (pushed, removed) = _end(repo, path, "topic/r", remove=False)
    assert pushed is not None
    assert not pushed.pushed and pushed.commit == git(path, "rev-parse", "HEAD")
    assert pushed.detail.startswith("git push failed with exit code 1: ")
    assert "closed for the night" in pushed.detail
    assert removed.removal == gitcmd.Removal.KEPT and removed.changes == (0, 0, 1)


def test_activity_mark_changes_with_any_activity(repo: dict[str, Path]) -> None:
    _, _, _, path = _checkout(repo, "s", "feature", None)
    run_dir = repo["sessions"] / ".rdev" / "s"

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


@pytest.mark.parametrize(
    "script",
    [gitcmd.CHECKOUT_SCRIPT, gitcmd.END_SCRIPT, gitcmd.CHANGES_SCRIPT],
)
def test_scripts_exit_only_with_the_codes_their_readers_name(script: str) -> None:
    """A script and its reader share ``gitcmd.Exit``: no bare code but 0, no unknown name."""
    assert set(re.findall(r"\bexit (\d+)", script)) <= {"0"}
    used = set(re.findall(r"\$E_([A-Z_]+)", script))
    assert used and used <= {code.name for code in gitcmd.Exit}
    assert "E_PATH_TAKEN=30\n" in script  # every name is defined before the script runs


def test_a_failure_names_the_part_of_the_checkout_it_stopped_in() -> None:
    stopped = ExecResult(gitcmd.Exit.TERMINATED, "", "")
    assert gitcmd.read_precheck(stopped).found == gitcmd.Found.OK  # not a finding
    assert gitcmd.read_checkout(stopped).detail.startswith("the branch check failed with ")
    after = ExecResult(gitcmd.Exit.ADD_FAILED, "start=\n", "fatal: no space left")
    assert gitcmd.read_checkout(after).detail.startswith("git worktree add failed with ")
