"""One reconcile's state (``Ctx``), the operator's shared ``Env``, and status I/O.

The ports ``Env`` holds are in ports.py, the per-project locks in locks.py.

Steps read and write the context only: the parsed spec, the status draft, the
pod target, the clock, the Events to post and the deadlines to wake at. The
controller writes the draft once at the end (only if it changed), or earlier
when a step must persist before a slow part (``flush``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rdev_api import API_VERSION, KIND, Body
from rdev_api.conditions import READY, RECONCILING, STALLED, SUMMARY, set_condition, without
from rdev_api.execresult import ExecResult
from rdev_api.models import Phase, SessionSpec, SessionStatus
from rdev_api.reasons import Mode, lookup

from .locks import KeyedLocks
from .ports import EventPort, ExecPort, KubePort
from .settings import Settings
from .store import Key, Store

if TYPE_CHECKING:
    from .steps.credential import Issued

log = logging.getLogger("session_operator")


# Per Session: (stalled reason, generation) and when this process saw that stall begin.
StallMarks = dict[Key, tuple[tuple[str, int], datetime]]


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


class Halt(Exception):
    """A step cannot go on: wait (for others) or stall (for a person), with a reason.

    What follows (phase, conditions, Event, re-check) comes from ``reasons.py``.
    """

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class PodTarget:
    """Where the session lives: the pod, the container, and the paths inside it."""

    pod: Body
    name: str
    container: str
    repo: str
    root: str
    path: str
    run_dir: str


@dataclass
class Ctx:
    key: Key
    body: Body
    spec: SessionSpec
    status: SessionStatus
    original: Body
    generation: int
    now: datetime
    target: PodTarget | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    deadlines: list[float] = field(default_factory=list)
    wrote: bool = False  # a status write happened in this reconcile
    fresh_checkout: bool = False  # the worktree was placed in this reconcile
    activity_judged: bool = False  # a workspace reading compared with an earlier one
    retry: bool = False  # a step failed: retry with this key's growing backoff; go on meanwhile
    backing_off: bool = False  # a step waits for that retry: keep the backoff as it is

    @property
    def namespace(self) -> str:
        return self.key[0]

    @property
    def name(self) -> str:
        return self.key[1]

    @property
    def uid(self) -> str:
        return str(self.body["metadata"].get("uid") or "")

    @property
    def stamp(self) -> str:
        return iso(self.now)

    # Status -----------------------------------------------------------------
    def cond(self, kind: str, status: bool | None, reason: str, message: str) -> None:
        self.status.conditions = set_condition(
            self.status.conditions, kind, status, reason, message, self.generation, self.stamp
        )

    def summary(self, reason: str, message: str) -> None:
        """Phase, Ready, Reconciling and Stalled from the reasons table (one kstatus story).

        An ended Session has no Ready (see conditions.py): kstatus then reads Current
        for every end reason, present or future; the reason stays on Reconciling/Stalled.
        """
        entry = lookup(reason)
        if entry.phase is not None:
            self.status.phase = entry.phase
        elif self.status.phase is None:
            self.status.phase = Phase.PENDING
        if entry.mode == Mode.ENDED:
            self.status.conditions = without(self.status.conditions, READY)
        else:
            self.cond(READY, entry.mode == Mode.READY, reason, message)
        self.cond(RECONCILING, entry.mode == Mode.RECONCILING, reason, message)
        self.cond(STALLED, entry.mode == Mode.STALLED, reason, message)

    def step(self, name: str) -> None:
        """Name the provisioning step in progress (reported if the deadline passes)."""
        if self.status.phase != Phase.ACTIVE:
            self.status.provisioning_step = name

    def event(self, kind: str, reason: str, message: str) -> None:
        self.events.append((kind, reason, message))

    def due_in(self, seconds: float | None) -> None:
        if seconds is not None:
            self.deadlines.append(max(seconds, 0.0))

    def dump(self) -> Body:
        return self.status.model_dump(by_alias=True, exclude_none=True, mode="json")

    def changed(self) -> bool:
        return self.dump() != self.original

    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose records name the Session (kopf's formatters print the reference)."""
        meta = self.body.get("metadata") or {}
        ref = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "namespace": meta.get("namespace"),
        }
        return logging.LoggerAdapter(log, {"k8s_ref": ref, "k8s_skip": True})


def draft_status(body: Body) -> tuple[SessionStatus, Body]:
    """The Session's status as a draft, and its normalised form (unchanged means equal)."""
    status = SessionStatus.model_validate(dict(body.get("status") or {}))
    return status.model_copy(deep=True), status.model_dump(
        by_alias=True, exclude_none=True, mode="json"
    )


@dataclass
class Env:
    """The ports and shared state every step may use; one per operator."""

    settings: Settings
    kube: KubePort
    events: EventPort
    execs: ExecPort
    store: Store
    project_locks: KeyedLocks = field(default_factory=KeyedLocks)
    # When each running web UI was last checked (loop time); lost on restart on purpose:
    # a resumed operator trusts the status and checks on schedule.
    webui_checked: dict[Key, float] = field(default_factory=dict)
    # The last activity fingerprint read from each worktree (see steps/workspace.py).
    activity: dict[Key, str] = field(default_factory=dict)
    # Since when (loop time) each placed session's pod has been absent; a restart
    # starts the grace again, which only ever waits longer.
    pod_absent_since: dict[Key, float] = field(default_factory=dict)
    # When each failing key's rate-limited retry is due (loop time; set by the controller
    # from the work queue's backoff): a failed web UI is not started again before it.
    retry_due: dict[Key, float] = field(default_factory=dict)
    # Each web UI NetworkPolicy known to exist: its UID, and the web UI check
    # (``webui_checked``) it was last seen at (see steps/preview.py).
    webui_policies: dict[Key, tuple[str, float | None]] = field(default_factory=dict)
    # When a stall changed its reason (and spec generation) while staying Stalled
    # (see controller.stall_since).
    stalls: StallMarks = field(default_factory=dict)
    # Each session credential issued by this process (see steps/credential.py).
    credentials: dict[Key, Issued] = field(default_factory=dict)

    async def run(
        self, ctx: Ctx, argv: list[str], step: str, *, timeout_s: float | None = None
    ) -> ExecResult:
        """Exec in the session's pod; ``timeout_s`` overrides RDEV_EXEC_TIMEOUT for a slow step."""
        target = ctx.target
        assert target is not None, "a step ran an exec before the pod was chosen"
        return await self.execs.run(
            ctx.namespace, target.name, target.container, argv, step=step, timeout_s=timeout_s
        )

    def forget(self, key: Key) -> None:
        self.webui_checked.pop(key, None)
        self.activity.pop(key, None)
        self.pod_absent_since.pop(key, None)
        self.retry_due.pop(key, None)
        self.webui_policies.pop(key, None)
        self.stalls.pop(key, None)
        self.credentials.pop(key, None)


def _summary_reason(status: Body) -> str | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == SUMMARY:
            return str(cond.get("reason") or "") or None
    return None


async def flush(ctx: Ctx, env: Env) -> bool:
    """Write the draft if it changed (one diff-only patch), then post its Events.

    The summary reason's Event (from the reasons table) is posted when the reason
    changes; the step Events collected so far go with it. Returns whether a
    status write happened.
    """
    old_reason = _summary_reason(ctx.original)
    wrote = False
    if ctx.changed():
        new = ctx.dump()
        patch = {k: new.get(k) for k in set(ctx.original) | set(new)}
        updated = await env.kube.patch_session_status(ctx.namespace, ctx.name, patch)
        if updated is not None:
            env.store.sessions.put(updated)
        wrote = ctx.wrote = True
    new_reason = _summary_reason(ctx.dump())
    old_phase = ctx.original.get("phase")
    new_phase = ctx.status.phase.value if ctx.status.phase else None
    summary = ctx.status.condition(SUMMARY)
    if wrote and (new_reason != old_reason or new_phase != old_phase):
        ctx.log().info(
            "phase %s, %s: %s", new_phase or "-", new_reason, summary.message if summary else ""
        )
    if new_reason and new_reason != old_reason:
        kind = lookup(new_reason).event
        if kind is not None:
            ctx.event(kind, new_reason, summary.message if summary else new_reason)
    await post_events(ctx, env)
    ctx.original = ctx.dump()
    return wrote


async def post_events(ctx: Ctx, env: Env) -> None:
    """Warnings one by one; the Normal steps of one reconcile as a single Event.

    Each Event is a write to the API server; one per reconcile keeps a
    lifecycle's write count near the floor while every step is still told.
    """
    events, ctx.events = ctx.events, []
    normal = [(r, m) for k, r, m in events if k == "Normal"]
    for kind, reason, message in events:
        if kind != "Normal":
            await env.events.post_event(ctx.body, kind, reason, message)
    if normal:
        await env.events.post_event(
            ctx.body, "Normal", normal[-1][0], "; ".join(m for _, m in normal)
        )
