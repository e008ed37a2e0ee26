"""Reasons: one enum for every reason the operator writes, none spelt out elsewhere."""

from __future__ import annotations

import re

from kubehelpers import ROOT
from rdev_api.reasons import REASONS, Reason

OPERATOR = ROOT / "operator" / "session_operator"
# A reason given where an Event is posted or a condition is set.
WRITES = re.compile(r"(?:\.event|post_event|\.cond)\((?:[^()]|\([^()]*\))*\)", re.S)


def test_every_summary_reason_is_a_member() -> None:
    assert set(REASONS) <= set(Reason)


def test_the_operator_writes_no_reason_as_a_literal() -> None:
    found = []
    for path in OPERATOR.rglob("*.py"):
        for call in WRITES.findall(path.read_text()):
            words = re.findall(r'"([A-Z][A-Za-z]+)"', call)
            found += [f"{path.name}: {w}" for w in words if w not in ("Normal", "Warning")]
    assert found == []
