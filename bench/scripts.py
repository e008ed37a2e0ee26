"""What the exec'd scripts cost: the operator's checkout and checkin against the floor's,
and their parts.

    .venv/bin/python bench/scripts.py [--runs 30]

In a burst the machine is saturated and kwok counts the processes an exec runs
as its own, so every CPU-ms a script spends in the pod is throughput lost (the
held burst, bench/README.md). This runs, on this host with no cluster, each
script --runs times on a fresh copy of the bench's per-pod template repository
(a new branch from origin's default, as the bench creates them), then each
command of the operator's checkout alone, then the checkin of such a worktree (push
for review and say what it holds), and prints the CPU of the child processes
(user + system) per run.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "operator")]

import fixtures  # noqa: E402
from floor import _CHECKIN as FLOOR_CHECKIN  # noqa: E402
from floor import _CHECKOUT as FLOOR_CHECKOUT  # noqa: E402
from session_operator import gitcmd  # noqa: E402

# (repo, worktree, branch, run folder) -> argv
Script = Callable[[str, str, str, str], list[str]]


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def per_run_ms(
    base: Path, template: Path, label: str, script: Script, runs: int, checked_out: bool = False
) -> float:
    """CPU-ms per run of ``script``; ``checked_out``: on a worktree the floor placed first."""
    total = 0.0
    for i in range(runs):
        repo = base / f"{label}-{i}"
        shutil.copytree(template, repo, symlinks=True)
        # A branch of its own: all clones share one origin, where a push that makes a ref
        # costs about 10 CPU-ms more than one that finds it made.
        branch = f"{label}/{i}"
        argv = script(str(repo), f"{repo}-wt", branch, f"{repo}-run")
        if checked_out:
            place = ["sh", "-c", FLOOR_CHECKOUT, "sh", str(repo), f"{repo}-wt", branch]
            subprocess.run(place, capture_output=True, check=True)
        before = children_cpu()
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        total += children_cpu() - before
        if done.returncode != 0:
            raise SystemExit(f"{label}: exit {done.returncode}: {done.stderr[-500:]}")
    return 1000 * total / runs


def parts(repo: str, wt: str) -> list[tuple[str, list[str]]]:
    """The operator's checkout of a new branch, one command at a time."""
    git = ["git", "-c", "core.pager=cat"]
    return [
        ("sh -c (the shell alone)", ["sh", "-c", "true"]),
        ("fetch", [*git, "-C", repo, "fetch", "--prune", "--quiet", "origin"]),
        ("symbolic-ref (origin's default)", [*git, "-C", repo, "symbolic-ref", "--quiet",
                                             "--short", "refs/remotes/origin/HEAD"]),
        ("for-each-ref (every ref question)", [*git, "-C", repo, "for-each-ref",
                                               "--format=%(refname)", "refs/heads/x",
                                               "refs/remotes/origin/x", "refs/remotes/origin/main",
                                               "refs/tags/main", "refs/heads/main"]),
        ("mkdir (the run folder)", ["mkdir", "-p", f"{wt}-run"]),
        ("worktree add", [*git, "-C", repo, "worktree", "add", "--quiet", "--no-track", "-b",
                          "x", "--", wt, "refs/remotes/origin/main"]),
        ("rev-parse HEAD", [*git, "-C", wt, "rev-parse", "--verify", "HEAD"]),
        ("rev-list (unpushed)", [*git, "-C", wt, "rev-list", "--count", "HEAD", "--not",
                                 "--remotes"]),
        ("status (the counts)", [*git, "-c", "core.quotePath=false", "-C", wt, "status",
                                 "--porcelain=v1", "--branch", "--no-renames",
                                 "--untracked-files=all", "--ignored=no"]),
        ("awk (the tally)", ["awk", "BEGIN { }", "/dev/null"]),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=30)
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rdev-scripts-") as tmp:
        base = Path(tmp)
        template = fixtures.make_template(base)

        def operator(repo: str, wt: str, branch: str, run: str) -> list[str]:
            return gitcmd.checkout(repo, wt, branch, new=True, from_ref=None, run_dir=run, uid="u")

        def floor(repo: str, wt: str, branch: str, run: str) -> list[str]:
            return ["sh", "-c", FLOOR_CHECKOUT, "sh", repo, wt, branch]

        print(f"CPU-ms per checkout of a new branch, {a.runs} runs each:")
        for label, script in (("operator", operator), ("floor", floor)):
            print(f"  {label:8s} {per_run_ms(base, template, label, script, a.runs):6.1f}")
        totals: dict[str, float] = {}
        for i in range(a.runs):
            repo = base / f"parts-{i}"
            shutil.copytree(template, repo, symlinks=True)
            for name, command in parts(str(repo), f"{repo}-wt"):
                before = children_cpu()
                subprocess.run(command, capture_output=True, check=True)
                totals[name] = totals.get(name, 0.0) + children_cpu() - before
        print("the operator's checkout, command by command:")
        for name, seconds in totals.items():
            print(f"  {name:34s} {1000 * seconds / a.runs:5.2f}")

        def operator_checkin(repo: str, wt: str, branch: str, run: str) -> list[str]:
            return gitcmd.end(repo, wt, run, branch)

        def floor_checkin(repo: str, wt: str, branch: str, run: str) -> list[str]:
            return ["sh", "-c", FLOOR_CHECKIN, "sh", wt, branch]

        print(f"CPU-ms per checkin (push for review) of such a worktree, {a.runs} runs each:")
        for label, script in (("operator", operator_checkin), ("floor", floor_checkin)):
            ms = per_run_ms(base, template, f"in-{label}", script, a.runs, checked_out=True)
            print(f"  {label:8s} {ms:6.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
