"""Every Ready reason the operator writes, in one table (public contract).

A reason decides the Session's phase, its kstatus story (Ready, Reconciling or
Stalled), the type of the Event posted when the Session enters it, and whether
the Session is re-checked on a timer. Steps raise ``Waiting``/``Stalled`` with a
reason; the controller looks the rest up here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .models import Phase


class Mode(StrEnum):
    """Which of Ready / Reconciling / Stalled is True (kstatus: exactly one, or none when ended).

    ENDED sets Reconciling and Stalled False and removes Ready, so that kstatus
    reads Current while ``condition=Ready`` keeps meaning "usable now".
    """

    READY = "ready"
    RECONCILING = "reconciling"
    STALLED = "stalled"
    ENDED = "ended"


@dataclass(frozen=True)
class Reason:
    name: str
    phase: Phase | None  # None: keep the phase the Session has (a retry mid-way)
    mode: Mode
    event: str | None  # Event type posted on entering this reason; None posts nothing
    # Re-checked on a timer: from RDEV_STALLED_RECHECK_INTERVAL, doubling up to
    # RDEV_STALLED_RECHECK_MAX while the reason stays.
    recheck: bool = False


PROJECT_NOT_FOUND = "ProjectNotFound"
PROJECT_NOT_RUNNING = "ProjectNotRunning"
PROJECT_BUSY = "ProjectBusy"
CONTAINER_NOT_FOUND = "ContainerNotFound"
BRANCH_NOT_FOUND = "BranchNotFound"
BRANCH_PROTECTED = "BranchProtected"
CHECKOUT_EXISTS = "CheckoutExists"
EXEC_FAILED = "ExecFailed"
PROGRESS_DEADLINE = "ProgressDeadlineExceeded"
INVALID_SPEC = "InvalidSpec"
PROVISIONING = "Provisioning"
ACTIVE = "Active"
ENDING = "Ending"
CHECKED_IN = "CheckedIn"
EXPIRED = "Expired"
IDLE_TIMEOUT = "IdleTimeout"
DELETED = "Deleted"
BRANCH_EXISTS = "BranchExists"
PREVIEW_NAME_TAKEN = "PreviewNameTaken"
PROJECT_POD_NOT_READY = "ProjectPodNotReady"
PROJECT_POD_GONE = "ProjectPodGone"

_TABLE = (
    Reason(PROJECT_NOT_FOUND, Phase.PENDING, Mode.RECONCILING, "Warning"),
    Reason(PROJECT_NOT_RUNNING, Phase.PENDING, Mode.RECONCILING, "Warning"),
    Reason(PROJECT_BUSY, Phase.PENDING, Mode.RECONCILING, "Normal"),
    Reason(CONTAINER_NOT_FOUND, Phase.FAILED, Mode.STALLED, "Warning", recheck=True),
    Reason(BRANCH_NOT_FOUND, Phase.FAILED, Mode.STALLED, "Warning", recheck=True),
    Reason(BRANCH_PROTECTED, Phase.FAILED, Mode.STALLED, "Warning"),
    Reason(CHECKOUT_EXISTS, Phase.FAILED, Mode.STALLED, "Warning", recheck=True),
    # newBranch names a branch that exists: only a person can decide (immutable spec).
    Reason(BRANCH_EXISTS, Phase.FAILED, Mode.STALLED, "Warning"),
    # A Service or Ingress of the preview's name that this Session does not own.
    # The phase is kept: a checked-out session keeps its turn on the project.
    Reason(PREVIEW_NAME_TAKEN, None, Mode.STALLED, "Warning", recheck=True),
    # A session with a checkout waits on its own pod, keeping its phase and turn.
    Reason(PROJECT_POD_NOT_READY, None, Mode.RECONCILING, "Warning"),
    Reason(PROJECT_POD_GONE, None, Mode.STALLED, "Warning", recheck=True),
    Reason(PROGRESS_DEADLINE, Phase.FAILED, Mode.STALLED, "Warning", recheck=True),
    Reason(INVALID_SPEC, Phase.FAILED, Mode.STALLED, "Warning"),
    Reason(EXEC_FAILED, None, Mode.RECONCILING, "Warning"),
    Reason(PROVISIONING, Phase.PROVISIONING, Mode.RECONCILING, None),
    Reason(ACTIVE, Phase.ACTIVE, Mode.READY, None),
    Reason(ENDING, Phase.ENDING, Mode.RECONCILING, "Warning"),
    Reason(CHECKED_IN, Phase.ENDED, Mode.ENDED, "Normal"),
    Reason(EXPIRED, Phase.EXPIRED, Mode.ENDED, "Normal"),
    Reason(IDLE_TIMEOUT, Phase.EXPIRED, Mode.ENDED, "Normal"),
    Reason(DELETED, Phase.ENDED, Mode.ENDED, "Normal"),
)
REASONS: dict[str, Reason] = {r.name: r for r in _TABLE}

# How a session ended: the reason, and the Ready message that goes with it.
END_MESSAGES = {
    CHECKED_IN: "checked in; the worktree and branch are kept",
    EXPIRED: "expired; the worktree and branch are kept",
    IDLE_TIMEOUT: "idle for longer than idleTimeout; the worktree and branch are kept",
    DELETED: "deleted; the session was ended",
}


def lookup(name: str) -> Reason:
    return REASONS[name]
