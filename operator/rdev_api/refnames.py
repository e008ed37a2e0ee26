"""Git ref-name rules for branch fields, shared by the models and the CRD.

Each rule is a (CEL expression, message, Python check) triple so that the API
server and the operator refuse exactly the same names; a test sends generated
names to both and compares. The rules follow ``git check-ref-format --branch``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

MAX_REF_LENGTH = 200

# Characters git forbids anywhere in a ref: ASCII control characters, space,
# DEL and ~ ^ : ? * [ \
_FORBIDDEN_CHARS_RE = r"[\x00-\x20\x7f~^:?*\[\\]"


# Names git resolves before any branch: a branch so named would be shadowed by them.
PSEUDO_REFS = (
    "FETCH_HEAD",
    "ORIG_HEAD",
    "MERGE_HEAD",
    "CHERRY_PICK_HEAD",
    "REVERT_HEAD",
    "REBASE_HEAD",
    "BISECT_HEAD",
    "AUTO_MERGE",
)


@dataclass(frozen=True)
class RefRule:
    cel: str
    message: str
    ok: Callable[[str], bool]


REF_RULES: tuple[RefRule, ...] = (
    RefRule(
        cel="!self.matches('" + _FORBIDDEN_CHARS_RE.replace("\\", "\\\\") + "')",
        message="must not contain spaces, control characters or any of ~ ^ : ? * [ \\",
        ok=lambda s: re.search(_FORBIDDEN_CHARS_RE, s) is None,
    ),
    RefRule(
        cel="!self.startsWith('-')",
        message="must not start with '-'",
        ok=lambda s: not s.startswith("-"),
    ),
    RefRule(
        cel="!self.contains('..')",
        message="must not contain '..'",
        ok=lambda s: ".." not in s,
    ),
    RefRule(
        cel="!self.contains('@{') && self != '@'",
        message="must not contain '@{' or be '@'",
        ok=lambda s: "@{" not in s and s != "@",
    ),
    RefRule(
        cel="!self.endsWith('/') && !self.endsWith('.') && !self.contains('//')",
        message="must not end with '/' or '.', or contain '//'",
        ok=lambda s: not s.endswith(("/", ".")) and "//" not in s,
    ),
    RefRule(
        cel="!self.startsWith('/') && !self.startsWith('.') && !self.contains('/.')",
        message="no path component may start with '.', and it must not start with '/'",
        ok=lambda s: not s.startswith(("/", ".")) and "/." not in s,
    ),
    RefRule(
        cel="self != 'HEAD'",
        message="must not be HEAD, which names the current commit, not a branch",
        ok=lambda s: s != "HEAD",
    ),
    RefRule(
        cel="!(self in " + repr(list(PSEUDO_REFS)).replace('"', "'") + ")",
        message="must not be one of git's own refs (" + ", ".join(PSEUDO_REFS) + ")",
        ok=lambda s: s not in PSEUDO_REFS,
    ),
    RefRule(
        cel="!self.endsWith('.lock') && !self.contains('.lock/')",
        message="no path component may end with '.lock'",
        ok=lambda s: not s.endswith(".lock") and ".lock/" not in s,
    ),
)


def ref_name_problems(name: str) -> list[str]:
    """Every rule the name breaks, as messages; empty when git would accept it."""
    problems: list[str] = []
    if not name:
        problems.append("must not be empty")
        return problems
    if len(name) > MAX_REF_LENGTH:
        problems.append(f"must be at most {MAX_REF_LENGTH} characters")
    problems.extend(rule.message for rule in REF_RULES if not rule.ok(name))
    return problems
