"""Git ref-name rules: the Python side of the rules the CRD also enforces in CEL."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from rdev_api.refnames import MAX_REF_LENGTH, PSEUDO_REFS, REF_RULES, ref_name_problems

VALID = [
    "main",
    "feature-a",
    "topic/x",
    "user/feature/deep",
    "v1.2.3",
    "fix_123",
    "release-2024.01",
    "a;b",  # git allows it; argv never reaches a shell
    "$(x)",
    "é-ünïcode",
    "a" * MAX_REF_LENGTH,
    "x.locked",
    "a@b",
    "a{b}",
]

INVALID = [
    "",
    "a..b",
    "-x",
    "-c core.sshCommand=x",
    "a b",
    "a\tb",
    "a\nb",
    "a\x00b",
    "a\x7fb",
    "x.lock",
    "x.lock/y",
    "a@{b",
    "@",
    "a~1",
    "a^",
    "a:b",
    "a?",
    "a*",
    "a[b",
    "a\\b",
    "a/",
    "a.",
    "a//b",
    "/a",
    ".a",
    "a/.b",
    "$(touch /tmp/pwn)",
    "HEAD",
    "FETCH_HEAD",
    "ORIG_HEAD",
    "MERGE_HEAD",
    "a" * (MAX_REF_LENGTH + 1),
]


@pytest.mark.parametrize("name", VALID)
def test_valid_names_have_no_problems(name: str) -> None:
    assert ref_name_problems(name) == []


@pytest.mark.parametrize("name", INVALID)
def test_invalid_names_are_explained(name: str) -> None:
    problems = ref_name_problems(name)
    assert problems
    assert all(isinstance(p, str) and p for p in problems)


def test_empty_name_is_reported_alone() -> None:
    assert ref_name_problems("") == ["must not be empty"]


def test_every_broken_rule_is_listed() -> None:
    problems = ref_name_problems("-a..b.lock")
    assert "must not start with '-'" in problems
    assert "must not contain '..'" in problems
    assert "no path component may end with '.lock'" in problems


def test_too_long_is_reported() -> None:
    assert ref_name_problems("a" * (MAX_REF_LENGTH + 1)) == [
        f"must be at most {MAX_REF_LENGTH} characters"
    ]


def test_each_rule_has_cel_and_message() -> None:
    assert len({r.message for r in REF_RULES}) == len(REF_RULES)
    for rule in REF_RULES:
        assert rule.cel.strip()
        assert rule.message.strip()
        assert "self" in rule.cel


# `git check-ref-format --branch @` expands "@" to HEAD; as a branch name it is refused.
# git's own refs pass check-ref-format, but a branch so named is shadowed by them.
STRICTER_THAN_GIT = {"@", "FETCH_HEAD", "ORIG_HEAD", "MERGE_HEAD"}


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_agrees_with_git_check_ref_format(tmp_path: Path) -> None:
    """Every name the rules accept, git accepts; every name git accepts, the rules accept."""
    names = [n for n in VALID + INVALID if "\x00" not in n]
    for name in names:
        ours = not ref_name_problems(name)
        git_ok = (
            subprocess.run(
                ["git", "check-ref-format", "--branch", name],
                capture_output=True,
                cwd=tmp_path,
                timeout=10,
            ).returncode
            == 0
        )
        if ours:
            assert git_ok, f"we accept {name!r} but git does not"
        elif len(name) <= MAX_REF_LENGTH and name and name not in STRICTER_THAN_GIT:
            assert not git_ok, f"git accepts {name!r} but we refuse it"


def test_git_own_refs_are_refused_with_their_reason() -> None:
    assert ref_name_problems("ORIG_HEAD") == [
        "must not be one of git's own refs (" + ", ".join(PSEUDO_REFS) + ")"
    ]
    assert ref_name_problems("feature/ORIG_HEAD") == []
