"""Decisions: given a Session, its project pod and what exists, do the next steps.

One level-based reconcile serves creation, updates, resumption and timers: it
reads the desired state (spec), the observed state (status, caches) and makes
them meet, so running it twice, or after a crash at any line, converges to the
same result without duplicates. It talks to the world only through ``Kube``
(API writes), ``PodExec`` (exec) and the caches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError

from . import builders, gitcmd, metrics, webui
from .cache import Key, ObjectCache
from .conditions import (
    CHECKOUT_READY,
    PREVIEW_READY,
    READY,
    RECONCILING,
    STALLED,
    WEBUI_READY,
    set_condition,
)
from .models import (
    TERMINAL_PHASES,
    Changes,
    Phase,
    Review,
    SessionSpec,
    SessionStatus,
    WebUIState,
)
from .podexec import ExecError, ExecResult
from .settings import Settings

log = logging.getLogger(__name__)
Body = dict[str, Any]

# Reasons (public contract).
PROJECT_NOT_FOUND = "ProjectNotFound"
PROJECT_NOT_RUNNING = "ProjectNotRunning"
PROJECT_BUSY = "ProjectBusy"
BRANCH_NOT_FOUND = "BranchNotFound"
BRANCH_PROTECTED = "BranchProtected"
CHECKOUT_EXISTS = "CheckoutExists"
EXEC_FAILED = "ExecFailed"
PROGRESS_DEADLINE = "ProgressDeadlineExceeded"
CHECKED_IN = "CheckedIn"
EXPIRED = "Expired"
INVALID_SPEC = "InvalidSpec"
PROVISIONING = "Provisioning"
ACTIVE = "Active"
ENDING = "Ending"

HOLDING_PHASES = frozenset({Phase.PROVISIONING.value, Phase.ACTIVE.value, Phase.ENDING.value})


class KubePort(Protocol):
    def patch_session_status(self, namespace: str, name: str, status: Body) -> Body | None: ...
    def patch_pod(self, namespace: str, name: str, patch: Body) -> bool: ...
    def get_service(self, namespace: str, name: str) -> Body | None: ...
    def create_service(self, body: Body) -> Body | None: ...
    def patch_service(self, namespace: str, name: str, patch: Any) -> Body | None: ...
    def delete_service(self, namespace: str, name: str) -> None: ...
    def apply_ingress(self, body: Body) -> None: ...
    def delete_ingress(self, namespace: str, name: str) -> None: ...
    def post_event(self, session: Body, kind: str, reason: str, message: str) -> None: ...


class ExecPort(Protocol):
    def run(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: list[str],
        *,
        step: str,
        timeout_s: float | None = None,
    ) -> ExecResult: ...


def session_log(body: Body) -> logging.LoggerAdapter[logging.Logger]:
    """A logger whose records name the Session (kopf's formatters print the reference)."""
    meta = body.get("metadata") or {}
    ref = {
        "apiVersion": "rdev.io/v1alpha1",
        "kind": "Session",
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "namespace": meta.get("namespace"),
    }
    return logging.LoggerAdapter(log, {"k8s_ref": ref, "k8s_skip": True})


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


def pod_ready(pod: Body) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def _created(body: Body) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))


def choose_pod(pods: list[Body], sticky: str | None) -> tuple[Body | None, str | None]:
    """The pod to use and, when none, the waiting reason.

    The pod a session already runs on is kept while it stays ready, so that a
    new pod of the same project never moves a live session; else the oldest.
    """
    if not pods:
        return None, PROJECT_NOT_FOUND
    ready = [p for p in pods if pod_ready(p)]
    if not ready:
        return None, PROJECT_NOT_RUNNING
    for pod in ready:
        if sticky and pod["metadata"]["name"] == sticky:
            return pod, None
    return sorted(ready, key=_created)[0], None


def _stalled(body: Body) -> bool:
    for cond in (body.get("status") or {}).get("conditions") or []:
        if cond.get("type") == STALLED and cond.get("status") == "True":
            return True
    return False


def queue_owner(me: str, sessions: list[Body]) -> str | None:
    """Which Session of a project may hold it now.

    A Session already holding the project keeps it; otherwise the oldest one
    that is neither ended nor stalled. A stalled Session re-checking itself
    (``me``) only gets the project when no other Session is waiting for it.
    Deleted Sessions leave the cache, so they never block the queue.
    """
    holders = [s for s in sessions if (s.get("status") or {}).get("phase") in HOLDING_PHASES]
    if holders:
        return str(sorted(holders, key=_created)[0]["metadata"]["name"])
    ended = {p.value for p in TERMINAL_PHASES}
    live = [
        s
        for s in sessions
        if (s.get("status") or {}).get("phase") not in ended
        and (s.get("spec") or {}).get("checkin") is None
    ]
    waiting = [s for s in live if not _stalled(s)]
    if not waiting:
        waiting = [s for s in live if s["metadata"]["name"] == me]
    if not waiting:
        return None
    return str(sorted(waiting, key=_created)[0]["metadata"]["name"])


class StepFailed(Exception):
    """A step could not complete; the reason and message go to the conditions."""

    def __init__(self, reason: str, message: str, *, stalled: bool, retry_s: float | None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.stalled = stalled
        self.retry_s = retry_s


@dataclass
class Draft:
    """The status being computed for one reconcile; written once at the end if it changed."""

    original: Body
    status: SessionStatus
    generation: int
    now: str
    events: list[tuple[str, str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, body: Body, now: datetime) -> Draft:
        """A draft of the Session's current status, normalised so unchanged means equal."""
        status = SessionStatus.model_validate(dict(body.get("status") or {}))
        return cls(
            original=status.model_dump(by_alias=True, exclude_none=True, mode="json"),
            status=status.model_copy(deep=True),
            generation=int((body.get("metadata") or {}).get("generation") or 1),
            now=iso(now),
        )

    def cond(self, kind: str, status: bool | None, reason: str, message: str) -> None:
        self.status.conditions = set_condition(
            self.status.conditions, kind, status, reason, message, self.generation, self.now
        )

    def summary(self, phase: Phase, reason: str, message: str, *, mode: str) -> None:
        """Set phase, Ready, Reconciling and Stalled together (kstatus: exactly one story)."""
        self.status.phase = phase
        self.cond(READY, mode == "ready", reason, message)
        self.cond(RECONCILING, mode == "reconciling", reason, message)
        self.cond(STALLED, mode == "stalled", reason, message)

    def event(self, kind: str, reason: str, message: str) -> None:
        self.events.append((kind, reason, message))

    def dump(self) -> Body:
        return self.status.model_dump(by_alias=True, exclude_none=True, mode="json")

    def changed(self) -> bool:
        return self.dump() != self.original


@dataclass
class Outcome:
    requeue_after: float | None
    wrote_status: bool = False


class Reconciler:
    def __init__(
        self,
        settings: Settings,
        kube: KubePort,
        execs: ExecPort,
        sessions: ObjectCache,
        pods: ObjectCache,
        services: ObjectCache,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.settings = settings
        self.kube = kube
        self.exec = execs
        self.sessions = sessions
        self.pods = pods
        self.services = services
        self.clock = clock
        self._session_locks: dict[Key, threading.Lock] = {}
        self._project_locks: dict[Key, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._attempts: dict[Key, int] = {}
        self._webui_checked: dict[Key, float] = {}
        self._prechecked: dict[Key, tuple[int, str]] = {}

    # Locks ----------------------------------------------------------------
    def session_lock(self, key: Key) -> threading.Lock:
        with self._locks_guard:
            return self._session_locks.setdefault(key, threading.Lock())

    def project_lock(self, key: Key) -> threading.Lock:
        with self._locks_guard:
            return self._project_locks.setdefault(key, threading.Lock())

    def forget(self, key: Key) -> None:
        with self._locks_guard:
            self._session_locks.pop(key, None)
        self._attempts.pop(key, None)
        self._webui_checked.pop(key, None)
        self._prechecked.pop(key, None)

    # Entry points ---------------------------------------------------------
    def reconcile(self, body: Body) -> Outcome:
        """Bring one Session closer to its spec; never raises."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        started = time.monotonic()
        result = "ok"
        with self.session_lock(key):
            try:
                outcome = self._reconcile(body)
                self._attempts.pop(key, None)
                return outcome
            except Exception as exc:  # a bug must not kill the daemon: report and retry
                result = "error"
                session_log(body).exception("reconcile failed")
                attempt = self._attempts.get(key, 0) + 1
                self._attempts[key] = attempt
                delay = self._backoff(attempt)
                self.kube.post_event(body, "Warning", "ReconcileError", str(exc)[:500])
                return Outcome(requeue_after=delay)
            finally:
                metrics.RECONCILE_DURATION.observe(time.monotonic() - started)
                metrics.RECONCILE_TOTAL.labels(result=result).inc()

    def _backoff(self, attempt: int) -> float:
        base = self.settings.retry_interval.total_seconds()
        return float(min(base * (2 ** max(attempt - 1, 0)), 300.0))

    # The reconcile ----------------------------------------------------------
    def _reconcile(self, body: Body) -> Outcome:
        meta = body["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        key = (namespace, name)
        now = self.clock()
        draft = Draft.of(body, now)
        generation = draft.generation
        status = draft.status
        try:
            spec = SessionSpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            problems = "; ".join(str(e["msg"]) for e in exc.errors())
            draft.summary(Phase.FAILED, INVALID_SPEC, f"invalid spec: {problems}", mode="stalled")
            draft.status.observed_generation = generation
            return self._finish(body, draft, None)

        created = parse_ts(meta.get("creationTimestamp")) or now
        expires_at = created + spec.expires_after
        draft.status.expires_at = iso(expires_at)
        draft.status.observed_generation = generation

        if status.phase in TERMINAL_PHASES:
            return self._finish(body, draft, None)

        end_reason = None
        if spec.checkin is not None:
            end_reason = CHECKED_IN
        elif now >= expires_at:
            end_reason = EXPIRED
        if end_reason:
            self.end_session(body, spec, draft, end_reason)
            return self._finish(body, draft, None)

        until_expiry = max((expires_at - now).total_seconds(), 0.0)
        try:
            requeue = self._provision(body, spec, draft, key)
        except StepFailed as failure:
            if failure.reason != PROGRESS_DEADLINE:
                # Waiting on others or on a person is not slow provisioning.
                draft.status.provisioning_since = None
                draft.status.provisioning_step = None
            if failure.stalled:
                draft.summary(Phase.FAILED, failure.reason, failure.message, mode="stalled")
            else:
                phase = draft.status.phase or Phase.PENDING
                if failure.reason in (PROJECT_NOT_FOUND, PROJECT_NOT_RUNNING, PROJECT_BUSY):
                    phase = Phase.PENDING
                draft.summary(phase, failure.reason, failure.message, mode="reconciling")
            requeue = failure.retry_s
        except ExecError as exc:
            attempt = self._attempts.get(key, 0) + 1
            self._attempts[key] = attempt
            message = str(exc)
            draft.summary(
                draft.status.phase or Phase.PENDING, EXEC_FAILED, message, mode="reconciling"
            )
            requeue = self._backoff(attempt)
            self._check_deadline(draft, now)
        delays = [d for d in (requeue, until_expiry) if d is not None]
        return self._finish(body, draft, min(delays) if delays else None)

    def _finish(self, body: Body, draft: Draft, requeue: float | None) -> Outcome:
        meta = body["metadata"]
        old_reason = _reason(draft.original)
        wrote = False
        if draft.changed():
            new = draft.dump()
            patch = {k: new.get(k) for k in set(draft.original) | set(new)}
            updated = self.kube.patch_session_status(meta["namespace"], meta["name"], patch)
            if updated is not None:
                self.sessions.put(updated)
            wrote = True
        new_reason = _reason(draft.dump())
        old_phase = draft.original.get("phase")
        new_phase = draft.status.phase.value if draft.status.phase else None
        if wrote and (new_reason != old_reason or new_phase != old_phase):
            ready = draft.status.condition(READY)
            session_log(body).info(
                "phase %s, %s: %s",
                new_phase or "-",
                new_reason,
                ready.message if ready else "",
            )
        if new_reason and new_reason != old_reason and new_reason not in (ACTIVE, PROVISIONING):
            ready = draft.status.condition(READY)
            kind = (
                "Normal"
                if new_reason in (CHECKED_IN, EXPIRED, PROJECT_BUSY, "Deleted")
                else "Warning"
            )
            draft.event(kind, new_reason, ready.message if ready else new_reason)
        self._post_events(body, draft.events)
        draft.events = []
        return Outcome(requeue_after=requeue, wrote_status=wrote)

    def _post_events(self, body: Body, events: list[tuple[str, str, str]]) -> None:
        """Warnings one by one; the Normal steps of one reconcile as a single Event.

        Each Event is a write to the API server; one per reconcile keeps a
        lifecycle's write count near the floor while every step is still told.
        """
        normal = [(r, m) for k, r, m in events if k == "Normal"]
        for kind, reason, message in events:
            if kind != "Normal":
                self.kube.post_event(body, kind, reason, message)
        if normal:
            self.kube.post_event(body, "Normal", normal[-1][0], "; ".join(m for _, m in normal))

    def _check_deadline(self, draft: Draft, now: datetime) -> None:
        since = parse_ts(draft.status.provisioning_since)
        if since and now - since > self.settings.progress_deadline:
            step = draft.status.provisioning_step or "provisioning"
            raise_stalled = StepFailed(
                PROGRESS_DEADLINE,
                f"still provisioning after the progress deadline; stuck at step: {step}",
                stalled=True,
                retry_s=self.settings.stalled_recheck_interval.total_seconds(),
            )
            draft.summary(Phase.FAILED, raise_stalled.reason, raise_stalled.message, mode="stalled")

    def _run(
        self, body: Body, pod: str, container: str | None, argv: list[str], step: str
    ) -> ExecResult:
        meta = body["metadata"]
        return self.exec.run(meta["namespace"], pod, container, argv, step=step)

    # Provisioning -----------------------------------------------------------
    def _provision(self, body: Body, spec: SessionSpec, draft: Draft, key: Key) -> float | None:
        namespace, name = key
        status = draft.status
        pods = self.pods.by_project(namespace, spec.project)
        pod, waiting = choose_pod(pods, status.pod_name)
        if pod is None:
            assert waiting is not None
            message = (
                f"no pod labelled rdev.io/project={spec.project} in namespace {namespace}"
                if waiting == PROJECT_NOT_FOUND
                else f"no pod of project {spec.project} is Running and Ready"
            )
            raise StepFailed(waiting, message, stalled=False, retry_s=None)
        pod_name = pod["metadata"]["name"]
        container = builders.pick_container(pod, spec.container)
        if container is None:
            raise StepFailed(
                PROJECT_NOT_RUNNING,
                f"pod {pod_name} has no container {spec.container}",
                stalled=False,
                retry_s=None,
            )
        repo, root = builders.pod_paths(pod, self.settings.repo_path, self.settings.worktree_root)
        path = builders.checkout_path(root, name)
        run_dir = builders.run_dir(root, name)
        branch = spec.wanted_branch
        if not draft.status.provisioning_since and draft.status.phase != Phase.ACTIVE:
            draft.status.provisioning_since = draft.now
        checked_out = (
            status.pod_name == pod_name
            and status.checkout_path == path
            and status.branch == branch
            and bool(status.commit)
            and status.condition(CHECKOUT_READY) is not None
            and status.condition(CHECKOUT_READY).status == "True"  # type: ignore[union-attr]
        )
        if not checked_out:
            if status.pod_name not in (None, pod_name):
                # A new pod: whatever ran on the old one is not running here.
                status.web_ui = None
                self._webui_checked.pop(key, None)
            self._checkout(body, spec, draft, pod_name, container, repo, path, key)

        # The pod's session label selects it for the preview Service.
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if labels.get(builders.SESSION_LABEL) != name:
            self._set_step(draft, "label the project pod")
            if self.kube.patch_pod(namespace, pod_name, builders.pod_session_label_patch(name)):
                meta = pod.get("metadata") or {}
                labeled = {**(meta.get("labels") or {}), builders.SESSION_LABEL: name}
                self.pods.put({**pod, "metadata": {**meta, "labels": labeled}})

        webui_delay = self._ensure_web_ui(
            body, spec, draft, pod_name, container, path, run_dir, key
        )
        self._ensure_preview(body, spec, draft, key)

        draft.status.provisioning_since = None
        draft.status.provisioning_step = None
        draft.summary(Phase.ACTIVE, ACTIVE, "session is active", mode="ready")
        if self._changes_due(draft):
            self.refresh_changes(body, draft, pod_name, container, path)
        return self._next_wake(draft, webui_delay)

    def _changes_due(self, draft: Draft) -> bool:
        changes = draft.status.changes
        checked = parse_ts(changes.checked_at) if changes else None
        now = parse_ts(draft.now)
        assert now is not None
        return checked is None or now - checked >= self.settings.changes_interval

    def _set_step(self, draft: Draft, step: str) -> None:
        if draft.status.phase != Phase.ACTIVE:
            draft.status.provisioning_step = step

    def _checkout(
        self,
        body: Body,
        spec: SessionSpec,
        draft: Draft,
        pod: str,
        container: str,
        repo: str,
        path: str,
        key: Key,
    ) -> None:
        namespace, name = key
        branch = spec.wanted_branch
        recheck = self.settings.stalled_recheck_interval.total_seconds()
        if branch in self.settings.protected_branches:
            raise StepFailed(
                BRANCH_PROTECTED,
                f"branch {branch} is protected; sessions may not check it out",
                stalled=True,
                retry_s=None,
            )
        project_key = (namespace, spec.project)
        owner = queue_owner(name, self.sessions.by_project(namespace, spec.project))
        busy = owner not in (None, name)
        marker = (draft.generation, pod)
        if busy and self._prechecked.get(key) == marker:
            # Checked already for this spec and pod; wait without exec'ing again.
            raise self._busy(spec.project, str(owner))
        self._set_step(draft, "fetch")
        with self.project_lock(project_key):
            # Read-only checks before taking a turn: a Session that cannot
            # proceed stalls here and never holds up the queue.
            checked = self._run(
                body,
                pod,
                container,
                gitcmd.precheck(repo, branch, bool(spec.new_branch), spec.from_ref),
                "precheck",
            )
        fields = gitcmd.parse_fields(checked.stdout)
        if checked.returncode == 20:
            raise StepFailed(
                BRANCH_NOT_FOUND,
                f"branch {branch} does not exist on origin or locally",
                stalled=True,
                retry_s=recheck,
            )
        if checked.returncode == 21:
            raise StepFailed(
                BRANCH_NOT_FOUND,
                f"fromRef {fields.get('from', spec.from_ref)} does not exist",
                stalled=True,
                retry_s=recheck,
            )
        if not checked.ok:
            raise ExecError(f"git fetch failed: {checked.stderr.strip()[:300]}")
        start = fields.get("start") or None

        if busy:
            self._prechecked[key] = marker
            raise self._busy(spec.project, str(owner))
        self._prechecked.pop(key, None)

        if draft.status.phase != Phase.PROVISIONING:
            draft.status.provisioning_since = draft.status.provisioning_since or draft.now
            draft.status.pod_name = pod
            draft.status.container = container
            draft.status.branch = branch
            draft.status.checkout_path = None
            draft.status.commit = None
            self._set_step(draft, "checkout")
            draft.summary(
                Phase.PROVISIONING, PROVISIONING, "checking out the branch", mode="reconciling"
            )
            draft.cond(CHECKOUT_READY, False, PROVISIONING, "checking out the branch")
            # Persist before the slow part: the progress deadline counts from here,
            # and a restarted operator sees the Session holds its project.
            self._finish(body, draft, None)
            draft.original = draft.dump()
        self._check_deadline(draft, self.clock())
        if draft.status.phase == Phase.FAILED:
            raise StepFailed(
                PROGRESS_DEADLINE,
                draft.status.condition(STALLED).message,  # type: ignore[union-attr]
                stalled=True,
                retry_s=recheck,
            )

        with self.project_lock(project_key):
            done = self._run(
                body, pod, container, gitcmd.checkout(repo, path, branch, start), "checkout"
            )
        head, _, state = done.stdout.partition("--rdev-changes--\n")
        fields = gitcmd.parse_fields(head)
        if done.returncode in (30, 31):
            holds = fields.get("holds")
            raise StepFailed(
                CHECKOUT_EXISTS,
                f"{path} already holds a worktree of branch {holds}"
                if done.returncode == 31
                else f"{path} already exists and is not a worktree of branch {branch}",
                stalled=True,
                retry_s=recheck,
            )
        if done.returncode == 40 and gitcmd.checkout_refused_elsewhere(done.stderr):
            raise StepFailed(
                CHECKOUT_EXISTS,
                f"branch {branch} is already checked out in another worktree",
                stalled=True,
                retry_s=recheck,
            )
        if not done.ok or not fields.get("commit"):
            raise ExecError(f"git worktree add failed: {done.stderr.strip()[:300]}")
        if fields.get("added") == "yes":
            draft.event("Normal", "CheckedOut", f"branch {branch} checked out at {path}")
        self._record_changes(draft, state)
        draft.status.pod_name = pod
        draft.status.container = container
        draft.status.branch = branch
        draft.status.checkout_path = path
        draft.status.commit = fields["commit"]
        draft.cond(CHECKOUT_READY, True, "CheckedOut", f"branch {branch} is checked out")

    @staticmethod
    def _busy(project: str, owner: str) -> StepFailed:
        return StepFailed(
            PROJECT_BUSY,
            f"project {project} is in use by session {owner}; waiting for it to end",
            stalled=False,
            retry_s=None,
        )

    # Web UI -----------------------------------------------------------------
    def _ensure_web_ui(
        self,
        body: Body,
        spec: SessionSpec,
        draft: Draft,
        pod: str,
        container: str,
        path: str,
        run_dir: str,
        key: Key,
    ) -> float | None:
        status = draft.status
        interval = self.settings.webui_check_interval.total_seconds()
        mono = time.monotonic()
        if not spec.web_ui:
            if status.web_ui not in (None, WebUIState.STOPPED):
                self._set_step(draft, "stop the web UI")
                stopped = self._run(body, pod, container, webui.stop(run_dir), "webui-stop")
                if not stopped.ok:
                    raise ExecError(f"stopping the web UI failed: {stopped.stderr.strip()[:300]}")
                draft.event("Normal", "WebUIStopped", "web UI stopped")
            status.web_ui = WebUIState.STOPPED
            draft.cond(WEBUI_READY, True, "Stopped", "web UI not requested")
            self._webui_checked.pop(key, None)
            return None
        last = self._webui_checked.get(key)
        if status.web_ui == WebUIState.RUNNING and last is None:
            # Resumed after a restart: trust the status now, check on schedule.
            self._webui_checked[key] = mono
            return interval
        if status.web_ui == WebUIState.RUNNING and last is not None and mono - last < interval:
            return interval - (mono - last)
        self._set_step(draft, "start the web UI")
        was_running = status.web_ui == WebUIState.RUNNING
        # The start script is also the liveness check: it starts nothing when the
        # recorded process is alive, so one exec covers both.
        started = self._run(
            body,
            pod,
            container,
            webui.start(path, run_dir, self.settings.webui_port, self.settings.webui_command),
            "webui-start",
        )
        if not started.ok:
            status.web_ui = WebUIState.FAILED
            message = "the web UI command exited at once; see its log in the pod"
            draft.cond(WEBUI_READY, False, "WebUIFailed", message)
            draft.event("Warning", "WebUIFailed", f"{message}: {started.stderr.strip()[:300]}")
            self._webui_checked[key] = mono
            return self.settings.retry_interval.total_seconds()
        status.web_ui = WebUIState.RUNNING
        if started.stdout.strip() == "started":
            if was_running:
                status.web_ui_restarts = (status.web_ui_restarts or 0) + 1
                metrics.WEBUI_RESTARTS.inc()
                draft.event("Warning", "WebUIRestarted", "the web UI had exited; started it again")
            else:
                draft.event("Normal", "WebUIStarted", "web UI started")
        draft.cond(WEBUI_READY, True, "Running", "web UI is running")
        self._webui_checked[key] = mono
        return interval

    # Preview ----------------------------------------------------------------
    def _ensure_preview(self, body: Body, spec: SessionSpec, draft: Draft, key: Key) -> None:
        namespace, name = key
        meta = body["metadata"]
        port = builders.pick_port(
            draft.status.web_ui == WebUIState.RUNNING, self.settings.webui_port, spec.preview_port
        )
        svc_name = builders.service_name(name)
        cached = self.services.get((namespace, svc_name))
        current = cached if cached is not None and _owned_by(cached, meta["uid"]) else None
        if current is None:
            current = self.kube.get_service(namespace, svc_name)
        desired = builders.preview_service(
            session=name,
            namespace=namespace,
            uid=meta["uid"],
            project=spec.project,
            feature=spec.feature_slug,
            port=port,
        )
        if current is None:
            self._set_step(draft, "create the preview Service")
            created = self.kube.create_service(desired)
            if created is None:  # 409: made by an earlier attempt
                current = self.kube.get_service(namespace, svc_name)
            else:
                self.services.put(created)
                draft.event("Normal", "ServiceCreated", f"preview Service {svc_name} created")
        if current is not None and builders.service_port(current) != port:
            self._set_step(draft, "update the preview Service")
            patched = self.kube.patch_service(
                namespace, svc_name, builders.service_port_patch(port)
            )
            if patched is not None:
                self.services.put(patched)
            draft.event("Normal", "ServiceUpdated", f"preview Service now on port {port}")
        if self.settings.ingress_class and self.settings.ingress_host_template:
            values = builders.template_values(name, namespace, spec.project, port)
            self.kube.apply_ingress(
                builders.preview_ingress(
                    session=name,
                    namespace=namespace,
                    uid=meta["uid"],
                    project=spec.project,
                    feature=spec.feature_slug,
                    host=self.settings.ingress_host_template.format(**values),
                    ingress_class=self.settings.ingress_class,
                )
            )
        draft.status.service_name = svc_name
        draft.status.service_port = port
        draft.status.preview_url = builders.preview_url(
            self.settings.preview_url_template, name, namespace, spec.project, port
        )
        draft.cond(PREVIEW_READY, True, "ServiceReady", f"preview Service {svc_name} is ready")

    # Workspace state ----------------------------------------------------------
    def _next_wake(self, draft: Draft, webui_delay: float | None) -> float | None:
        interval = self.settings.changes_interval.total_seconds()
        checked = draft.status.changes.checked_at if draft.status.changes else None
        since = parse_ts(checked) or parse_ts(draft.now)
        assert since is not None
        due = (since + timedelta(seconds=interval) - parse_ts(draft.now)).total_seconds()  # type: ignore[operator]
        delays = [d for d in (webui_delay, max(due, 0.0)) if d is not None]
        return min(delays) if delays else None

    def refresh_changes(
        self, body: Body, draft: Draft, pod: str, container: str | None, path: str
    ) -> Changes | None:
        result = self._run(body, pod, container, gitcmd.changes(path), "changes")
        if not result.ok:
            return None
        return self._record_changes(draft, result.stdout)

    def _record_changes(self, draft: Draft, output: str) -> Changes:
        uncommitted, untracked, unpushed = gitcmd.parse_changes(output)
        changes = Changes(
            uncommitted_files=uncommitted,
            untracked_files=untracked,
            unpushed_commits=unpushed,
            checked_at=draft.now,
        )
        draft.status.changes = changes
        return changes

    # Ending -------------------------------------------------------------------
    def end_session(self, body: Body, spec: SessionSpec, draft: Draft, reason: str) -> None:
        """Stop the web UI, drop the Service and label, keep the worktree and branch."""
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        status = draft.status
        stopping_web_ui = status.web_ui not in (None, WebUIState.STOPPED)
        if status.phase != Phase.ENDING and status.phase in HOLDING_PHASES and stopping_web_ui:
            # Stopping the web UI is the slow part: say so while it happens.
            draft.summary(Phase.ENDING, ENDING, "ending the session", mode="reconciling")
            self._finish(body, draft, None)
            draft.original = draft.dump()
        pod = self.pods.get((namespace, status.pod_name)) if status.pod_name else None
        if pod is not None and pod_ready(pod) and status.checkout_path:
            container = status.container
            try:
                self.refresh_changes(
                    body, draft, status.pod_name or "", container, status.checkout_path
                )
                if status.web_ui not in (None, WebUIState.STOPPED):
                    root = builders.pod_paths(
                        pod, self.settings.repo_path, self.settings.worktree_root
                    )[1]
                    self._run(
                        body,
                        status.pod_name or "",
                        container,
                        webui.stop(builders.run_dir(root, name)),
                        "webui-stop",
                    )
            except ExecError as exc:
                if not exc.pod_gone:
                    raise
        svc = builders.service_name(name)
        self.kube.delete_service(namespace, svc)
        self.services.remove((namespace, svc))
        if self.settings.ingress_class:
            self.kube.delete_ingress(namespace, svc)
        if pod is not None:
            labels = (pod.get("metadata") or {}).get("labels") or {}
            if labels.get(builders.SESSION_LABEL) == name:
                self.kube.patch_pod(
                    namespace, pod["metadata"]["name"], builders.pod_session_label_patch(None)
                )
        checkin = spec.checkin
        if reason == CHECKED_IN and checkin is not None and not checkin.skip_review:
            status.review = Review(requested=True, auto_merge=checkin.auto_merge)
        phase = Phase.EXPIRED if reason == EXPIRED else Phase.ENDED
        message = {
            CHECKED_IN: "checked in; the worktree and branch are kept",
            EXPIRED: "expired; the worktree and branch are kept",
        }.get(reason, "deleted; the session was ended")
        status.web_ui = WebUIState.STOPPED if status.web_ui is not None else None
        status.service_name = None
        status.service_port = None
        status.preview_url = None
        status.provisioning_since = None
        status.provisioning_step = None
        status.ended_at = status.ended_at or draft.now
        draft.summary(phase, reason, message, mode="ended")
        if status.condition(PREVIEW_READY) is not None:
            draft.cond(PREVIEW_READY, False, reason, "the preview Service was removed")
        if status.condition(WEBUI_READY) is not None:
            draft.cond(WEBUI_READY, False, reason, "the web UI was stopped")
        self._webui_checked.pop((namespace, name), None)

    # Deletion ---------------------------------------------------------------
    def delete(self, body: Body) -> None:
        """End the session if needed, then remove the worktree only if nothing would be lost.

        Raises ExecError for a transient failure; the caller bounds the retries
        so that a vanished pod can never hold the finalizer forever.
        """
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        key = (namespace, name)
        with self.session_lock(key):
            draft = Draft.of(body, self.clock())
            status = draft.status
            try:
                spec: SessionSpec | None = SessionSpec.model_validate(body.get("spec") or {})
            except ValidationError:
                spec = None
            if spec is not None and status.phase not in TERMINAL_PHASES:
                created = parse_ts(meta.get("creationTimestamp")) or self.clock()
                if spec.checkin is not None:
                    reason = CHECKED_IN
                elif self.clock() >= created + spec.expires_after:
                    reason = EXPIRED
                else:
                    reason = "Deleted"
                self.end_session(body, spec, draft, reason)
                self._finish(body, draft, None)
                draft.original = draft.dump()
                draft.events.clear()
            self._remove_worktree(body, draft)
            self._post_events(body, draft.events)
        self.forget(key)

    def _remove_worktree(self, body: Body, draft: Draft) -> None:
        status = draft.status
        name = body["metadata"]["name"]
        if not status.checkout_path or not status.pod_name:
            return
        pod = self.pods.get((body["metadata"]["namespace"], status.pod_name))
        if pod is None or not pod_ready(pod):
            draft.event(
                "Warning",
                "WorktreeKept",
                f"project pod {status.pod_name} is not running; the worktree at"
                f" {status.checkout_path} was left in place",
            )
            return
        repo, root = builders.pod_paths(pod, self.settings.repo_path, self.settings.worktree_root)
        project = (body.get("spec") or {}).get("project") or ""
        with self.project_lock((body["metadata"]["namespace"], project)):
            result = self._run(
                body,
                status.pod_name,
                status.container,
                gitcmd.remove(repo, status.checkout_path, builders.run_dir(root, name)),
                "remove",
            )
        state, _, verdict = result.stdout.partition("\n--rdev-verdict--\n")
        if result.ok and "removed=gone" in result.stdout:
            return
        if not result.ok and result.returncode != 52:
            raise ExecError(f"could not read the worktree's state: {result.stderr.strip()[:300]}")
        changes = self._record_changes(draft, state)
        if verdict.strip() == "kept":
            draft.event(
                "Warning",
                "WorktreeKept",
                f"worktree {status.checkout_path} kept: {changes.uncommitted_files} uncommitted,"
                f" {changes.untracked_files} untracked files, {changes.unpushed_commits}"
                " unpushed commits",
            )
            return
        if result.returncode == 52:
            draft.event(
                "Warning",
                "WorktreeKept",
                f"git refused to remove {status.checkout_path}: {result.stderr.strip()[:300]}",
            )
            return
        draft.event("Normal", "WorktreeRemoved", f"worktree {status.checkout_path} removed")


def _owned_by(obj: Body, uid: str) -> bool:
    return any(
        ref.get("uid") == uid for ref in (obj.get("metadata") or {}).get("ownerReferences") or []
    )


def _reason(status: Body) -> str | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == READY:
            return str(cond.get("reason") or "") or None
    return None
