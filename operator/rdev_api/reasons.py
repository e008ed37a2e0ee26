"""Every reason the operator writes (one enum), and the summary reasons' table (public contract).

A reason decides the Session's phase, its kstatus story (Ready, Reconciling or
Stalled), the type of the Event posted when the Session enters it, and whether
the Session is re-checked on a timer. Steps raise ``Halt`` with a
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


class Reason(StrEnum):
    """Every reason the operator writes: the summary reasons in ``REASONS`` (the Ready,
    Reconciling and Stalled story), and those only on an Event or a per-part condition."""

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
    CREDENTIAL_NAME_TAKEN = "CredentialNameTaken"
    PROJECT_POD_NOT_READY = "ProjectPodNotReady"
    PROJECT_POD_GONE = "ProjectPodGone"
    # Only on Events and per-part conditions (CheckoutReady, PreviewReady, WebUIReady)
    RECONCILE_ERROR = "ReconcileError"
    WORKTREE_KEPT = "WorktreeKept"
    WORKTREE_REMOVED = "WorktreeRemoved"
    BRANCH_PUSHED = "BranchPushed"
    PUSH_FAILED = "PushFailed"
    CHECKED_OUT = "CheckedOut"
    SERVICE_READY = "ServiceReady"
    SERVICE_UPDATED = "ServiceUpdated"
    EXPIRING_SOON = "ExpiringSoon"
    WEBUI_FAILED = "WebUIFailed"
    WEBUI_UNHEALTHY = "WebUIUnhealthy"
    STARTING = "Starting"
    WEBUI_RESTARTED = "WebUIRestarted"
    WEBUI_STARTED = "WebUIStarted"
    WEBUI_STOPPED = "WebUIStopped"
    RUNNING = "Running"
    STOPPED = "Stopped"
    CREDENTIAL_ISSUED = "CredentialIssued"
    CREDENTIAL_REVOKED = "CredentialRevoked"


@dataclass(frozen=True)
class Rule:
    """What entering a summary reason means for the Session."""

    name: Reason
    phase: Phase | None  # None: keep the phase the Session has (a retry mid-way)
    mode: Mode
    event: str | None  # Event type posted on entering this reason; None posts nothing
    # Re-checked on a timer: from RDEV_STALLED_RECHECK_INTERVAL, doubling up to
    # RDEV_STALLED_RECHECK_MAX while the reason stays.
    recheck: bool = False


_TABLE = (
    Rule(Reason.PROJECT_NOT_FOUND, Phase.PENDING, Mode.RECONCILING, "Warning"),
    Rule(Reason.PROJECT_NOT_RUNNING, Phase.PENDING, Mode.RECONCILING, "Warning"),
    Rule(Reason.PROJECT_BUSY, Phase.PENDING, Mode.RECONCILING, "Normal"),
    Rule(Reason.CONTAINER_NOT_FOUND, Phase.FAILED, Mode.STALLED, "Warning", recheck=True),
    Rule(Reason.BRANCH_NOT_FOUND, Phase.FAILED, Mode.STALLED, "Warning", recheck=True),
    Rule(Reason.BRANCH_PROTECTED, Phase.FAILED, Mode.STALLED, "Warning"),
    Rule(Reason.CHECKOUT_EXISTS, Phase.FAILED, Mode.STALLED, "Warning", recheck=True),
    # newBranch names a branch that exists: only a person can decide (immutable spec).
    Rule(Reason.BRANCH_EXISTS, Phase.FAILED, Mode.STALLED, "Warning"),
    # A Service or Ingress of the preview's name that this Session does not own.
    # The phase is kept: a checked-out session keeps its turn on the project.
    Rule(Reason.PREVIEW_NAME_TAKEN, None, Mode.STALLED, "Warning", recheck=True),
    # A ServiceAccount, Role, RoleBinding or Secret of the credential's name that this
    # Session does not own (spec.credential): the same story as the preview's.
    Rule(Reason.CREDENTIAL_NAME_TAKEN, None, Mode.STALLED, "Warning", recheck=True),
    # A session with a checkout waits on its own pod, keeping its phase and turn.
    Rule(Reason.PROJECT_POD_NOT_READY, None, Mode.RECONCILING, "Warning"),
    Rule(Reason.PROJECT_POD_GONE, None, Mode.STALLED, "Warning", recheck=True),
    Rule(Reason.PROGRESS_DEADLINE, Phase.FAILED, Mode.STALLED, "Warning", recheck=True),
    Rule(Reason.INVALID_SPEC, Phase.FAILED, Mode.STALLED, "Warning"),
    Rule(Reason.EXEC_FAILED, None, Mode.RECONCILING, "Warning"),
    Rule(Reason.PROVISIONING, Phase.PROVISIONING, Mode.RECONCILING, None),
    Rule(Reason.ACTIVE, Phase.ACTIVE, Mode.READY, None),
    Rule(Reason.ENDING, Phase.ENDING, Mode.RECONCILING, "Warning"),
    Rule(Reason.CHECKED_IN, Phase.ENDED, Mode.ENDED, "Normal"),
    Rule(Reason.EXPIRED, Phase.EXPIRED, Mode.ENDED, "Normal"),
    Rule(Reason.IDLE_TIMEOUT, Phase.EXPIRED, Mode.ENDED, "Normal"),
    Rule(Reason.DELETED, Phase.ENDED, Mode.ENDED, "Normal"),
)
REASONS: dict[str, Rule] = {r.name: r for r in _TABLE}

# How a session ended: the reason, and the Ready message that goes with it.
END_MESSAGES: dict[str, str] = {
    Reason.CHECKED_IN: "checked in; the worktree and branch are kept",
    Reason.EXPIRED: "expired; the worktree and branch are kept",
    Reason.IDLE_TIMEOUT: "idle for longer than idleTimeout; the worktree and branch are kept",
    Reason.DELETED: "deleted; the session was ended",
}


def lookup(name: str) -> Rule:
    return REASONS[name]
