"""Every reason the operator writes reads right in kstatus and in Argo CD's health script.

The statuses come from the operator's own code (``Ctx.summary`` over the reasons
table); the verdicts from the real libraries (see tests/gitops_verdicts.py).
The GitOps table of docs/operations.md is generated here and must match.
"""

from __future__ import annotations

import copy
import textwrap
from datetime import UTC, datetime

import pytest

from gitops_verdicts import (
    DELETING,
    GITOPS_DOC,
    LUA_SCRIPT,
    NO_STATUS,
    NOT_OBSERVED,
    TABLE_BEGIN,
    TABLE_END,
    argocd,
    gitops_table_text,
    kstatus,
)
from rdev_api import Body
from rdev_api.models import Phase, SessionSpec
from rdev_api.reasons import REASONS, Mode, Reason
from session_operator import crd
from session_operator.controller import new_ctx

NOW = datetime(2026, 1, 1, tzinfo=UTC)

# What a GitOps user needs from each kstatus mode (the last column).
NEEDED = {
    Mode.READY: ("Current", "Healthy"),
    Mode.RECONCILING: ("InProgress", "Progressing"),
    Mode.STALLED: ("Failed", "Degraded"),
    Mode.ENDED: ("Current", "Healthy"),
}


def bare(generation: int = 1) -> Body:
    return {
        "apiVersion": "rdev.io/v1alpha1",
        "kind": "Session",
        "metadata": {
            "name": "s",
            "namespace": "ns",
            "uid": "u",
            "generation": generation,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"project": "shop", "branch": "b"},
    }


def session_with(reason: str) -> Body:
    """An Active Session (Ready=True) that the operator then moves to ``reason``."""
    body = bare()
    ctx = new_ctx(body, SessionSpec.model_validate(body["spec"]), NOW)
    ctx.status.observed_generation = 1
    ctx.summary(Reason.ACTIVE, "session is active")
    ctx.summary(reason, "a message")
    return {**body, "status": ctx.dump()}


def verdicts(objs: list[Body]) -> list[tuple[str, str]]:
    return list(zip(kstatus(objs), [argocd(o) for o in objs], strict=True))


def ready_of(obj: Body) -> str:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == "Ready":
            return str(c["status"])
    return "absent"


def special_rows() -> list[tuple[str, Body]]:
    not_observed = session_with(Reason.ACTIVE)
    not_observed["metadata"]["generation"] = 2
    deleting = session_with(Reason.DELETED)
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:05:00Z"
    # As the API server serves a Session no operator has written yet (the CRD's default).
    unseen = {**bare(), "status": crd.status_schema()["default"]}
    return [(NO_STATUS, unseen), (NOT_OBSERVED, not_observed), (DELETING, deleting)]


def test_every_reason_reads_what_a_gitops_user_needs() -> None:
    objs = [session_with(name) for name in REASONS]
    got = dict(zip(REASONS, verdicts(objs), strict=True))
    want = {name: NEEDED[r.mode] for name, r in REASONS.items()}
    assert got == want


def test_ready_true_means_usable_now_and_nothing_else() -> None:
    """`kubectl wait --for=condition=Ready` returns for an Active Session only."""
    for name, r in REASONS.items():
        expected = {Mode.READY: "True", Mode.ENDED: "absent"}.get(r.mode, "False")
        assert ready_of(session_with(name)) == expected, name


def test_special_states() -> None:
    rows = special_rows()
    got = dict(zip([k for k, _ in rows], verdicts([o for _, o in rows]), strict=True))
    assert got == {
        # observedGeneration 0 (the CRD's default) is behind: not yet Current.
        NO_STATUS: ("InProgress", "Progressing"),
        NOT_OBSERVED: ("InProgress", "Progressing"),
        DELETING: ("Terminating", "Progressing"),
    }


@pytest.mark.parametrize(
    ("phase", "reconciling", "stalled", "needed"),
    [
        (Phase.EXPIRED, "False", "False", ("Current", "Healthy")),
        (Phase.ENDED, "False", "False", ("Current", "Healthy")),
        (Phase.PENDING, "True", "False", ("InProgress", "Progressing")),
        (Phase.ACTIVE, "False", "True", ("Failed", "Degraded")),
    ],
)
def test_a_reason_added_later_reads_right(
    phase: Phase, reconciling: str, stalled: str, needed: tuple[str, str]
) -> None:
    """Neither tool reads reasons: a made-up one changes nothing."""
    obj = bare()
    new = {"reason": "SomethingNew", "message": "m"}
    obj["status"] = {
        "phase": phase.value,
        "observedGeneration": 1,
        "conditions": [
            {"type": "Reconciling", "status": reconciling, **new},
            {"type": "Stalled", "status": stalled, **new},
        ],
    }
    if phase == Phase.PENDING:
        obj["status"]["conditions"].insert(0, {"type": "Ready", "status": "False", **new})
    assert verdicts([obj]) == [needed]


def test_ended_session_stays_current_when_written_again() -> None:
    """Re-writing an ended Session (a resync) brings no Ready back."""
    obj = session_with(REASONS["IdleTimeout"].name)
    again = copy.deepcopy(obj)
    ctx = new_ctx(again, SessionSpec.model_validate(again["spec"]), NOW)
    ctx.summary("IdleTimeout", "a message")
    assert ctx.dump() == obj["status"]


def generated_table() -> str:
    lines = [
        "| reason | phase | `Ready` | kstatus (Flux, kpt, cli-utils)"
        " | Argo CD (session-health.lua) |",
        "|---|---|---|---|---|",
    ]
    objs = [session_with(name) for name in REASONS]
    for (name, r), obj, (ks, argo) in zip(REASONS.items(), objs, verdicts(objs), strict=True):
        phase = r.phase.value if r.phase else "(kept)"
        lines.append(f"| `{name}` | {phase} | {ready_of(obj)} | {ks} | {argo} |")
    rows = special_rows()
    for (key, obj), (ks, argo) in zip(rows, verdicts([o for _, o in rows]), strict=True):
        phase = (obj.get("status") or {}).get("phase", "-") if key != DELETING else "any"
        ready = ready_of(obj) if key != DELETING else "any"
        lines.append(f"| {key} | {phase} | {ready} | {ks} | {argo} |")
    return "\n".join(lines)


def test_gitops_doc_table_is_the_generated_one() -> None:
    table = generated_table()
    assert gitops_table_text() == table, (
        f"replace the table in {GITOPS_DOC} between {TABLE_BEGIN!r} and {TABLE_END!r}:\n{table}"
    )


def test_gitops_doc_snippet_is_the_shipped_script() -> None:
    text = GITOPS_DOC.read_text()
    key = "resource.customizations.health.rdev.io_Session: |\n"
    block = text.split(key, 1)[1].split("```", 1)[0]
    assert textwrap.dedent(block) == LUA_SCRIPT.read_text()
