"""Pure decisions of the reconcile, and a reconcile against small in-memory fakes."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from asynchelpers import aio
from rdev_api import FINALIZER, Body, execresult
from rdev_api.execresult import ExecResult, parse_exit_status
from rdev_api.models import SessionSpec
from rdev_api.reasons import Reason
from session_operator import gitcmd
from session_operator.backoff import BACKOFF_CAP_S, Backoff
from session_operator.context import Env
from session_operator.controller import (
    Controller,
    Result,
    new_ctx,
    recheck_delay,
    set_clone_url,
)
from session_operator.kube import KubeError, Stale
from session_operator.queue import WorkQueue
from session_operator.settings import Settings
from session_operator.steps import checkout as checkout_step
from session_operator.store import Store
from session_operator.turns import choose_pod, pod_ready, queue_owner


# queue_owner ----------------------------------------------------------------
def session(
    name: str,
    created: str,
    phase: str | None = None,
    *,
    stalled: bool = False,
    checkin: bool = False,
) -> Body:
    status: Body = {}
    if phase:
        status["phase"] = phase
    if stalled:
        status["conditions"] = [{"type": "Stalled", "status": "True"}]
    spec: Body = {"project": "shop", "branch": name}
    if checkin:
        spec["checkin"] = {}
    return {
        "metadata": {"name": name, "namespace": "ns", "creationTimestamp": created},
        "spec": spec,
        "status": status,
    }


T1, T2, T3 = "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z", "2026-01-01T00:00:03Z"


def test_queue_empty() -> None:
    assert queue_owner("a", []) is None


def test_queue_oldest_waiting_wins() -> None:
    sessions = [session("b", T2), session("a", T1, "Pending"), session("c", T3)]
    assert queue_owner("c", sessions) == "a"


def test_queue_holder_keeps_project_even_if_younger() -> None:
    for phase in ("Provisioning", "Active", "Ending"):
        sessions = [session("old", T1, "Pending"), session("young", T2, phase)]
        assert queue_owner("old", sessions) == "young"


def test_queue_oldest_holder_when_several() -> None:
    sessions = [session("b", T2, "Active"), session("a", T1, "Provisioning")]
    assert queue_owner("b", sessions) == "a"


@pytest.mark.parametrize("phase", ["Ended", "Expired"])
def test_queue_ended_sessions_do_not_block(phase: str) -> None:
    sessions = [session("done", T1, phase), session("next", T2)]
    assert queue_owner("next", sessions) == "next"


def test_queue_checked_in_sessions_do_not_block() -> None:
    sessions = [session("leaving", T1, "Pending", checkin=True), session("next", T2)]
    assert queue_owner("next", sessions) == "next"


def test_queue_stalled_sessions_do_not_block_others() -> None:
    sessions = [session("stuck", T1, "Failed", stalled=True), session("next", T2)]
    assert queue_owner("next", sessions) == "next"


def test_queue_recovering_stalled_session_waits_behind_others() -> None:
    # Both must agree on one owner, or two Sessions would provision one project.
    sessions = [session("stuck", T1, "Failed", stalled=True), session("next", T2)]
    assert queue_owner("stuck", sessions) == "next"
    assert queue_owner("next", sessions) == "next"


def test_queue_stalled_session_gets_an_idle_project() -> None:
    sessions = [session("stuck", T1, "Failed", stalled=True)]
    assert queue_owner("stuck", sessions) == "stuck"


def test_queue_ties_broken_by_name() -> None:
    sessions = [session("b", T1), session("a", T1)]
    assert queue_owner("b", sessions) == "a"


def test_queue_nobody_eligible() -> None:
    sessions = [session("x", T1, "Ended"), session("y", T2, stalled=True)]
    assert queue_owner("z", sessions) is None


# choose_pod -------------------------------------------------------------------
def pod(
    name: str,
    created: str,
    *,
    ready: bool = True,
    phase: str = "Running",
    deleting: bool = False,
    project: str = "shop",
) -> Body:
    meta: Body = {
        "name": name,
        "namespace": "ns",
        "creationTimestamp": created,
        "labels": {"rdev.io/project": project},
        "resourceVersion": "1",
    }
    if deleting:
        meta["deletionTimestamp"] = T3
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": "dev"}]},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def test_pod_ready() -> None:
    assert pod_ready(pod("p", T1))
    assert not pod_ready(pod("p", T1, ready=False))
    assert not pod_ready(pod("p", T1, phase="Pending"))
    assert not pod_ready(pod("p", T1, deleting=True))
    assert not pod_ready({"metadata": {"name": "p"}})


def test_choose_pod_none() -> None:
    assert choose_pod([], None) == (None, Reason.PROJECT_NOT_FOUND)


def test_choose_pod_not_ready() -> None:
    pods = [pod("a", T1, ready=False), pod("b", T2, deleting=True)]
    assert choose_pod(pods, "a") == (None, Reason.PROJECT_NOT_RUNNING)


def test_choose_pod_oldest_ready() -> None:
    pods = [
        pod("young", T3),
        pod("old", T1),
        pod("older-but-down", "2025-01-01T00:00:00Z", ready=False),
    ]
    chosen, reason = choose_pod(pods, None)
    assert reason is None and chosen is not None and chosen["metadata"]["name"] == "old"


def test_choose_pod_sticky() -> None:
    pods = [pod("old", T1), pod("mine", T3)]
    chosen, _ = choose_pod(pods, "mine")
    assert chosen is not None and chosen["metadata"]["name"] == "mine"


def test_choose_pod_sticky_not_ready_moves_on() -> None:
    pods = [pod("old", T1), pod("mine", T3, ready=False)]
    chosen, _ = choose_pod(pods, "mine")
    assert chosen is not None and chosen["metadata"]["name"] == "old"


def test_choose_pod_sticky_gone() -> None:
    chosen, _ = choose_pod([pod("b", T2), pod("a", T2)], "vanished")
    assert chosen is not None and chosen["metadata"]["name"] == "a"


# parse_changes ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        ("uncommitted=0\nuntracked=0\nunpushed=0\n", (0, 0, 0)),
        ("uncommitted=2\nuntracked=2\nunpushed=3\n--rdev-activity--\n9 9\n", (2, 2, 3)),
        ("untracked=1\n", (0, 1, 0)),
        ("uncommitted=1\nunpushed=fatal: bad revision\n", (1, 0, 0)),
        ("", (0, 0, 0)),
    ],
)
def test_parse_changes(stdout: str, expected: tuple[int, int, int]) -> None:
    assert gitcmd.parse_changes(stdout) == expected


# podexec.parse_exit_status -------------------------------------------------------------
def test_exit_status_success() -> None:
    assert parse_exit_status("") == 0
    assert parse_exit_status("  \n") == 0
    assert parse_exit_status(json.dumps({"metadata": {}, "status": "Success"})) == 0


def test_exit_status_standard_causes() -> None:
    status = {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: error executing command"
        " [sh -c exit 7], exit code 7",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "7"}]},
    }
    assert parse_exit_status(json.dumps(status)) == 7


def test_exit_status_kwok_message_only() -> None:
    status = {
        "metadata": {},
        "status": "Failure",
        "message": "error executing command [git worktree add]: exit status 7",
    }
    assert parse_exit_status(json.dumps(status)) == 7


def test_exit_status_unparseable() -> None:
    assert parse_exit_status(json.dumps({"status": "Failure", "message": "boom"})) == 1
    assert parse_exit_status("not json, exit status 3") == 3
    assert parse_exit_status("not json at all") == 1


def test_exec_result_ok() -> None:
    assert ExecResult(0, "", "").ok
    assert not ExecResult(7, "", "").ok
    err = execresult.ExecError("gone", pod_gone=True)
    assert err.pod_gone and not err.timed_out


# A reconcile against in-memory fakes -------------------------------------------------
class FakeKube:
    """Holds Sessions and Services like the API server would; records every write."""

    def __init__(self) -> None:
        self.sessions: dict[tuple[str, str], Body] = {}
        self.services: dict[tuple[str, str], Body] = {}
        self.ingresses: dict[tuple[str, str], Body] = {}
        self.policies: dict[tuple[str, str], Body] = {}
        self.status_patches: list[Body] = []
        self.events: list[tuple[str, str, str]] = []
        self.pod_patches: list[tuple[str, Body]] = []
        self.deleted_services: list[str] = []
        self.creds: dict[tuple[str, str], Body] = {}
        self.calls: list[tuple[str, str]] = []
        self.service_gets: list[str] = []
        self.finalizer_patches: list[str] = []
        self.rv = 100

    def add_session(self, body: Body) -> Body:
        meta = body["metadata"]
        self.sessions[(meta["namespace"], meta["name"])] = body
        return body

    async def patch_session_status(self, namespace: str, name: str, status: Body) -> Body | None:
        self.status_patches.append(copy.deepcopy(status))
        body = self.sessions.get((namespace, name))
        if body is None:
            return None
        merged = dict(body.get("status") or {})
        for key, value in status.items():  # merge patch: null removes
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        self.rv += 1
        body = {**body, "status": merged}
        body["metadata"] = {**body["metadata"], "resourceVersion": str(self.rv)}
        self.sessions[(namespace, name)] = body
        return copy.deepcopy(body)

    async def add_finalizer(self, body: Body, finalizer: str) -> Body | None:
        return self._finalizers(body, lambda have: [*have, finalizer])

    async def remove_finalizer(self, body: Body, finalizer: str) -> Body | None:
        return self._finalizers(body, lambda have: [f for f in have if f != finalizer])

    def _finalizers(self, body: Body, change: Any) -> Body | None:
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        self.finalizer_patches.append(key[1])
        held = self.sessions.get(key)
        if held is None:
            return None
        self.rv += 1
        have = list(held["metadata"].get("finalizers") or [])
        meta = {**held["metadata"], "finalizers": change(have), "resourceVersion": str(self.rv)}
        self.sessions[key] = {**held, "metadata": meta}
        return copy.deepcopy(self.sessions[key])

    async def patch_pod(self, namespace: str, name: str, patch: Body) -> bool:
        self.pod_patches.append((name, patch))
        return True

    def _create(self, objects: dict[tuple[str, str], Body], body: Body) -> Body | None:
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        if key in objects:
            return None
        self.rv += 1
        body = {**body, "metadata": {"uid": f"uid-{self.rv}", **body["metadata"]}}
        objects[key] = body
        return body

    @staticmethod
    def _delete(objects: dict[tuple[str, str], Body], namespace: str, name: str, uid: str) -> bool:
        current = objects.get((namespace, name))
        if current is None:
            return True
        if current["metadata"]["uid"] != uid:
            return False  # the API server's 409 for a failed UID precondition
        del objects[(namespace, name)]
        return True

    async def get_service(self, namespace: str, name: str) -> Body | None:
        self.service_gets.append(name)
        return self.services.get((namespace, name))

    async def get_ingress(self, namespace: str, name: str) -> Body | None:
        return self.ingresses.get((namespace, name))

    async def get_network_policy(self, namespace: str, name: str) -> Body | None:
        return self.policies.get((namespace, name))

    async def create_service(self, body: Body) -> Body | None:
        return self._create(self.services, body)

    async def create_ingress(self, body: Body) -> Body | None:
        return self._create(self.ingresses, body)

    async def create_network_policy(self, body: Body) -> Body | None:
        return self._create(self.policies, body)

    async def patch_service(self, namespace: str, name: str, patch: Any) -> Body | None:
        raise AssertionError("not expected in these tests")

    async def patch_ingress(self, namespace: str, name: str, patch: Any) -> Body | None:
        raise AssertionError("not expected in these tests")

    async def patch_network_policy(self, namespace: str, name: str, patch: Any) -> Body | None:
        raise AssertionError("not expected in these tests")

    async def delete_service(self, namespace: str, name: str, uid: str) -> bool:
        present = (namespace, name) in self.services
        deleted = self._delete(self.services, namespace, name, uid)
        if present and deleted:
            self.deleted_services.append(name)
            self.calls.append(("delete", "Service"))
        return deleted

    async def delete_ingress(self, namespace: str, name: str, uid: str) -> bool:
        return self._delete(self.ingresses, namespace, name, uid)

    async def delete_network_policy(self, namespace: str, name: str, uid: str) -> bool:
        return self._delete(self.policies, namespace, name, uid)

    # A session credential's objects, by (kind, name); every call in ``calls``.
    server = "https://api.example"
    ca_data = None

    def _cred_create(self, body: Body) -> Body | None:
        self.calls.append(("create", body["kind"]))
        key = (body["kind"], body["metadata"]["name"])
        if key in self.creds:
            return None
        self.rv += 1
        body = {**body, "metadata": {"uid": f"uid-{self.rv}", **body["metadata"]}}
        self.creds[key] = body
        return copy.deepcopy(body)

    def _cred_patch(self, kind: str, name: str, patch: Any) -> Body | None:
        self.calls.append(("patch", kind))
        current = self.creds.get((kind, name))
        if current is None:
            return None
        for op in patch:
            if op["op"] == "test" and op["path"] == "/metadata/ownerReferences/0/uid":
                refs = current["metadata"].get("ownerReferences") or [{}]
                if refs[0].get("uid") != op["value"]:
                    raise KubeError(422, "the test failed")
        return copy.deepcopy(current)

    def _cred_delete(self, kind: str, name: str, uid: str) -> bool:
        self.calls.append(("delete", kind))
        current = self.creds.get((kind, name))
        if current is None:
            return True
        if current["metadata"]["uid"] != uid:
            return False
        del self.creds[(kind, name)]
        return True

    async def create_service_account(self, body: Body) -> Body | None:
        return self._cred_create(body)

    async def create_role(self, body: Body) -> Body | None:
        return self._cred_create(body)

    async def create_role_binding(self, body: Body) -> Body | None:
        return self._cred_create(body)

    async def create_secret(self, body: Body) -> Body | None:
        return self._cred_create(body)

    async def patch_service_account(self, namespace: str, name: str, patch: Any) -> Body | None:
        return self._cred_patch("ServiceAccount", name, patch)

    async def patch_role(self, namespace: str, name: str, patch: Any) -> Body | None:
        return self._cred_patch("Role", name, patch)

    async def patch_role_binding(self, namespace: str, name: str, patch: Any) -> Body | None:
        return self._cred_patch("RoleBinding", name, patch)

    async def patch_secret(self, namespace: str, name: str, patch: Any) -> Body | None:
        return self._cred_patch("Secret", name, patch)

    async def delete_service_account(self, namespace: str, name: str, uid: str) -> bool:
        return self._cred_delete("ServiceAccount", name, uid)

    async def delete_role(self, namespace: str, name: str, uid: str) -> bool:
        return self._cred_delete("Role", name, uid)

    async def delete_role_binding(self, namespace: str, name: str, uid: str) -> bool:
        return self._cred_delete("RoleBinding", name, uid)

    async def delete_secret(self, namespace: str, name: str, uid: str) -> bool:
        return self._cred_delete("Secret", name, uid)

    async def create_token(self, namespace: str, name: str, body: Body) -> Body | None:
        raise AssertionError("not expected in these tests")

    async def post_event(self, session: Body, kind: str, reason: str, message: str) -> None:
        self.events.append((kind, reason, message))


class FakeExec:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def run(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: Sequence[str],
        *,
        step: str,
        timeout_s: float | None = None,
    ) -> ExecResult:
        self.calls.append(list(argv))
        raise AssertionError(f"no exec expected, got {step}: {argv}")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


CREATED = datetime(2026, 1, 1, tzinfo=UTC)


class Harness:
    """A controller over the fakes; ``reconcile`` puts the body in the store first."""

    def __init__(self, pods: list[Body] | None) -> None:
        self.kube, self.execs = FakeKube(), FakeExec()
        self.clock = Clock(CREATED + timedelta(minutes=1))
        self.store = Store()
        for p in pods or []:
            self.store.pods.put(p)
        env = Env(
            settings=Settings(),
            kube=self.kube,
            events=self.kube,
            execs=self.execs,
            store=self.store,
        )
        queue: WorkQueue[tuple[str, str]] = WorkQueue(Backoff(10.0, BACKOFF_CAP_S))
        self.controller = Controller(env, queue, clock=self.clock)

    async def reconcile(self, body: Body) -> Result:
        self.store.sessions.put(copy.deepcopy(body))
        meta = body["metadata"]
        return await self.controller.reconcile((meta["namespace"], meta["name"]))


def make(pods: list[Body] | None = None) -> tuple[Harness, FakeKube, FakeExec, Clock]:
    h = Harness(pods)
    return h, h.kube, h.execs, h.clock


def new_session(name: str = "s1", **spec: Any) -> Body:
    return {
        "apiVersion": "rdev.io/v1alpha1",
        "kind": "Session",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "generation": 1,
            "resourceVersion": "1",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "finalizers": [FINALIZER],  # as the first reconcile leaves it
        },
        "spec": {"project": "shop", "branch": "feature-a", **spec},
    }


def preview_service(session: str, *, owner_uid: str | None) -> Body:
    """A preview-named Service owned by the Session with ``owner_uid`` (None: by nobody)."""
    meta: Body = {"name": f"{session}-preview", "namespace": "ns", "uid": f"svc-{session}"}
    if owner_uid is not None:
        meta["ownerReferences"] = [{"kind": "Session", "name": session, "uid": owner_uid}]
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": {}}


def cond(body: Body, kind: str) -> Body:
    return next(c for c in body["status"]["conditions"] if c["type"] == kind)


@aio
async def test_no_pod_goes_pending_then_rewrites_nothing() -> None:
    reconciler, kube, execs, clock = make()
    body = kube.add_session(new_session())

    first = await reconciler.reconcile(body)
    assert first.wrote_status
    assert len(kube.status_patches) == 1
    stored = kube.sessions[("ns", "s1")]
    status = stored["status"]
    assert status["phase"] == "Pending"
    assert status["observedGeneration"] == 1
    assert status["expiresAt"] == "2026-01-02T00:00:00Z"
    assert cond(stored, "Ready")["status"] == "False"
    assert cond(stored, "Ready")["reason"] == Reason.PROJECT_NOT_FOUND
    assert cond(stored, "Reconciling") == {
        "type": "Reconciling",
        "status": "True",
        "reason": Reason.PROJECT_NOT_FOUND,
        "message": "no pod labelled rdev.io/project=shop in namespace ns",
        "lastTransitionTime": "2026-01-01T00:01:00Z",
        "observedGeneration": 1,
    }
    assert cond(stored, "Stalled")["status"] == "False"
    assert [c["type"] for c in status["conditions"]] == ["Ready", "Reconciling", "Stalled"]
    assert ("Warning", Reason.PROJECT_NOT_FOUND) in [(k, r) for k, r, _ in kube.events]
    assert execs.calls == []
    # Woken when the expiry warning is due at the latest (the pod watch wakes it sooner).
    warn_at = timedelta(hours=23, minutes=59) - Settings().expiry_warning
    assert first.requeue_after == pytest.approx(warn_at.total_seconds())

    # The same inputs again, later: nothing to write, no new event.
    clock.now += timedelta(minutes=5)
    events_before = list(kube.events)
    second = await reconciler.reconcile(copy.deepcopy(stored))
    assert not second.wrote_status
    assert len(kube.status_patches) == 1
    assert kube.events == events_before
    assert kube.sessions[("ns", "s1")] == stored


@aio
async def test_pod_not_ready_is_project_not_running() -> None:
    reconciler, kube, _, _ = make([pod("shop-1", T1, ready=False)])
    body = kube.add_session(new_session())
    await reconciler.reconcile(body)
    stored = kube.sessions[("ns", "s1")]
    assert stored["status"]["phase"] == "Pending"
    assert cond(stored, "Reconciling")["reason"] == Reason.PROJECT_NOT_RUNNING
    assert (await reconciler.reconcile(copy.deepcopy(stored))).wrote_status is False


@aio
async def test_transition_time_survives_a_reason_change() -> None:
    reconciler, kube, _, clock = make()
    body = kube.add_session(new_session())
    await reconciler.reconcile(body)
    first = cond(kube.sessions[("ns", "s1")], "Reconciling")
    clock.now += timedelta(minutes=1)
    reconciler.store.pods.put(pod("shop-1", T1, ready=False))
    await reconciler.reconcile(copy.deepcopy(kube.sessions[("ns", "s1")]))
    second = cond(kube.sessions[("ns", "s1")], "Reconciling")
    assert second["reason"] == Reason.PROJECT_NOT_RUNNING
    assert second["lastTransitionTime"] == first["lastTransitionTime"]


@aio
async def test_invalid_spec_stalls_without_exec() -> None:
    reconciler, kube, execs, _ = make()
    body = kube.add_session(new_session(newBranch="also-set"))
    outcome = await reconciler.reconcile(body)
    stored = kube.sessions[("ns", "s1")]
    assert outcome.wrote_status
    assert stored["status"]["phase"] == "Failed"
    assert cond(stored, "Stalled")["status"] == "True"
    assert cond(stored, "Stalled")["reason"] == "InvalidSpec"
    assert "exactly one of branch or newBranch" in cond(stored, "Stalled")["message"]
    assert execs.calls == []
    assert (await reconciler.reconcile(copy.deepcopy(stored))).wrote_status is False


@aio
async def test_checkin_without_pod_ends_and_requests_review() -> None:
    reconciler, kube, _, _ = make()
    body = kube.add_session(new_session(checkin={"autoMerge": True}))
    kube.services[("ns", "s1-preview")] = preview_service("s1", owner_uid="uid-s1")
    await reconciler.reconcile(body)
    stored = kube.sessions[("ns", "s1")]
    status = stored["status"]
    assert status["phase"] == "Ended"
    assert status["review"] == {"requested": True, "autoMerge": True}
    assert status["endedAt"] == "2026-01-01T00:01:00Z"
    # Ended: no Ready (kstatus reads Current); the reason is on Reconciling/Stalled.
    assert all(c["type"] != "Ready" for c in status["conditions"])
    assert cond(stored, "Reconciling")["reason"] == "CheckedIn"
    assert cond(stored, "Reconciling")["status"] == "False"
    assert cond(stored, "Stalled")["status"] == "False"
    assert "s1-preview" in kube.deleted_services
    assert ("Normal", "CheckedIn") in [(k, r) for k, r, _ in kube.events]
    patches = len(kube.status_patches)
    assert (await reconciler.reconcile(copy.deepcopy(stored))).wrote_status is False
    assert len(kube.status_patches) == patches


@aio
async def test_ending_leaves_a_preview_service_it_does_not_own() -> None:
    reconciler, kube, _, _ = make()
    body = kube.add_session(new_session(checkin={"skipReview": True}))
    foreign = preview_service("s1", owner_uid=None)
    kube.services[("ns", "s1-preview")] = foreign
    await reconciler.reconcile(body)
    assert kube.sessions[("ns", "s1")]["status"]["phase"] == "Ended"
    assert kube.services[("ns", "s1-preview")] is foreign
    assert kube.deleted_services == []


def credential(kind: str, owner_uid: str | None) -> Body:
    meta: Body = {"name": "s1-credential", "namespace": "ns", "uid": f"{kind}-uid"}
    if owner_uid is not None:
        meta["ownerReferences"] = [{"kind": "Session", "name": "s1", "uid": owner_uid}]
    return {"kind": kind, "metadata": meta}


CREDENTIAL_KINDS = ("Secret", "ServiceAccount", "Role", "RoleBinding")


@aio
async def test_checkin_revokes_the_credential_first_secret_first() -> None:
    """Before anything else the session's end does (here: the Service), and the Secret first:
    deleting it ends the token. This process knew none of their UIDs (a restart): each is
    found with the owner check, then deleted with its UID as precondition."""
    reconciler, kube, _, _ = make()
    body = new_session(credential=True, checkin={"skipReview": True})
    body["status"] = {"phase": "Active", "credentialSecret": "s1-credential"}
    kube.add_session(body)
    kube.services[("ns", "s1-preview")] = preview_service("s1", owner_uid="uid-s1")
    for kind in CREDENTIAL_KINDS:
        kube.creds[(kind, "s1-credential")] = credential(kind, "uid-s1")
    await reconciler.reconcile(body)
    assert kube.creds == {}
    deletes = [kind for verb, kind in kube.calls if verb == "delete"]
    assert deletes == ["Secret", "RoleBinding", "Role", "ServiceAccount", "Service"]
    status = kube.sessions[("ns", "s1")]["status"]
    assert status["phase"] == "Ended"
    assert "credentialSecret" not in status
    assert any("credential revoked" in m for _, _, m in kube.events)
    # Ended: nothing more to revoke, no call.
    calls = len(kube.calls)
    await reconciler.reconcile(kube.sessions[("ns", "s1")])
    assert len(kube.calls) == calls


@aio
async def test_ending_leaves_credential_named_objects_it_does_not_own() -> None:
    reconciler, kube, _, _ = make()
    body = kube.add_session(new_session(credential=True, checkin={"skipReview": True}))
    for kind in CREDENTIAL_KINDS:
        kube.creds[(kind, "s1-credential")] = credential(kind, None)
    kube.creds[("Secret", "s1-credential")] = credential("Secret", "uid-someone-else")
    before = copy.deepcopy(kube.creds)
    await reconciler.reconcile(body)
    assert kube.sessions[("ns", "s1")]["status"]["phase"] == "Ended"
    assert kube.creds == before
    assert [verb for verb, _ in kube.calls] == ["patch"] * 4  # owner checks only


@aio
async def test_expired_session_ends_as_expired() -> None:
    reconciler, kube, _, clock = make()
    clock.now = CREATED + timedelta(hours=2)
    body = kube.add_session(new_session(expiresIn="90m"))
    await reconciler.reconcile(body)
    stored = kube.sessions[("ns", "s1")]
    assert stored["status"]["phase"] == "Expired"
    assert stored["status"]["expiresAt"] == "2026-01-01T01:30:00Z"
    assert all(c["type"] != "Ready" for c in stored["status"]["conditions"])
    assert cond(stored, "Reconciling")["reason"] == "Expired"
    assert "review" not in stored["status"]


# Exec failures back off per Session, growing and capped, and reset on success ---------
class FlakyExec:
    """Fails every exec while ``failing``; otherwise answers like the git scripts do."""

    def __init__(self) -> None:
        self.failing = True
        self.steps: list[str] = []

    async def run(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: Sequence[str],
        *,
        step: str,
        timeout_s: float | None = None,
    ) -> ExecResult:
        self.steps.append(step)
        if self.failing:
            raise execresult.ExecError(f"exec into pod {pod} failed: stream broke")
        answers = {
            "checkout": "start=\nadded=yes\ncommit=abc123\n--rdev-changes--\nuncommitted=0\n",
            "changes": "uncommitted=0\nuntracked=0\nunpushed=0\n",
        }
        return ExecResult(0, answers[step], "")


@aio
async def test_exec_failures_back_off_growing_capped_and_reset_on_success() -> None:
    h = Harness([pod("shop-1", T1)])
    flaky = FlakyExec()
    h.controller.env.execs = flaky
    queue = h.controller.queue
    key = ("ns", "s1")
    h.kube.add_session(new_session())
    delays = []
    for _ in range(7):
        result = await h.reconcile(h.kube.sessions[key])
        assert result.failed
        h.controller.schedule(key, result)
        delays.append(queue.pending_delay(key))
    assert delays == pytest.approx([10, 20, 40, 80, 160, 300, 300], abs=0.5)
    stored = h.kube.sessions[key]
    assert cond(stored, "Reconciling")["reason"] == "ExecFailed"
    assert "stream broke" in cond(stored, "Reconciling")["message"]

    flaky.failing = False
    result = await h.reconcile(h.kube.sessions[key])
    assert not result.failed
    h.controller.schedule(key, result)
    assert queue.backoff.failures(key) == 0
    assert h.kube.sessions[key]["status"]["phase"] == "Active"

    flaky.failing = True
    h.clock.now += timedelta(minutes=10)  # the workspace state is due again
    result = await h.reconcile(h.kube.sessions[key])
    assert result.failed
    h.controller.schedule(key, result)
    assert queue.pending_delay(key) == pytest.approx(10, abs=0.5)


# A placed session never moves; the turn is decided before any exec ------------------
def placed(name: str = "s1", pod_name: str = "mine") -> Body:
    body = new_session(name)
    body["status"] = {
        "phase": "Active",
        "podName": pod_name,
        "container": "dev",
        "branch": "feature-a",
        "checkoutPath": f"/workspace/sessions/{name}",
        "commit": "abc123",
        "conditions": [{"type": "Ready", "status": "True", "reason": "Active"}],
    }
    return body


@pytest.mark.parametrize("down", ["not-ready", "terminating", "absent"])
def test_placed_session_waits_on_its_own_pod(down: str) -> None:
    asyncio.run(_waits_on_its_own_pod(down))


async def _waits_on_its_own_pod(down: str) -> None:
    pods = [pod("other", T1)]
    if down != "absent":
        pods.append(pod("mine", T2, ready=down != "not-ready", deleting=down == "terminating"))
    h, kube, execs, _ = make(pods)
    body = kube.add_session(placed())
    result = await h.reconcile(body)
    stored = kube.sessions[("ns", "s1")]
    assert stored["status"]["phase"] == "Active"  # keeps its phase and its turn
    assert stored["status"]["podName"] == "mine"
    assert cond(stored, "Ready")["reason"] == "ProjectPodNotReady"
    assert cond(stored, "Reconciling")["status"] == "True"
    assert "/workspace/sessions/s1" in cond(stored, "Ready")["message"]
    assert execs.calls == [] and kube.pod_patches == []  # nothing done on "other"
    if down == "absent":  # woken when the grace ends
        grace = Settings().pod_gone_grace.total_seconds()
        assert result.requeue_after == pytest.approx(grace, abs=1)


@aio
async def test_placed_session_stalls_once_its_pod_is_gone_past_the_grace() -> None:
    h, kube, execs, _ = make([pod("other", T1)])
    h.controller.env.settings = Settings(pod_gone_grace=timedelta(0))
    body = kube.add_session(placed())
    await h.reconcile(body)
    stored = kube.sessions[("ns", "s1")]
    assert stored["status"]["phase"] == "Active"
    assert cond(stored, "Stalled")["reason"] == "ProjectPodGone"
    assert cond(stored, "Stalled")["status"] == "True"
    message = cond(stored, "Ready")["message"]
    assert "mine" in message and "/workspace/sessions/s1" in message
    assert ("Warning", "ProjectPodGone") in [(k, r) for k, r, _ in kube.events]
    assert execs.calls == []


@aio
async def test_a_session_waiting_for_its_turn_runs_no_exec() -> None:
    h, kube, execs, _ = make([pod("mine", T1)])
    holder = kube.add_session(placed("holder"))
    h.store.sessions.put(copy.deepcopy(holder))
    waiting = kube.add_session(new_session("s2"))
    await h.reconcile(waiting)
    stored = kube.sessions[("ns", "s2")]
    assert stored["status"]["phase"] == "Pending"
    assert cond(stored, "Ready")["reason"] == "ProjectBusy"
    assert execs.calls == []  # no fetch while the turn is elsewhere


# A web UI that exits at once backs off through the queue, and only through it -------
class CrashingUIExec(FlakyExec):
    """git answers as usual; the web UI exits at once while ``ui_failing``."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False
        self.ui_failing = True
        self.stops: list[tuple[list[str], float | None]] = []

    async def run(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: Sequence[str],
        *,
        step: str,
        timeout_s: float | None = None,
    ) -> ExecResult:
        if step == "webui-stop":
            self.stops.append((list(argv), timeout_s))
            return ExecResult(0, "stopped\n", "")
        if step == "webui-start":
            self.steps.append(step)
            if self.ui_failing:
                return ExecResult(3, "token=ghp_SECRET123\n", "")
            return ExecResult(0, "started\n", "")
        return await super().run(namespace, pod, container, argv, step=step, timeout_s=timeout_s)


@aio
async def test_failing_web_ui_backs_off_through_the_queue_and_resets_on_success() -> None:
    h = Harness([pod("shop-1", T1)])
    ui = CrashingUIExec()
    h.controller.env.execs = ui
    queue, env = h.controller.queue, h.controller.env
    key = ("ns", "s1")
    h.kube.add_session(new_session(webUI=True))
    delays = []
    for attempt in range(1, 5):
        result = await h.reconcile(h.kube.sessions[key])
        assert result.failed
        h.controller.schedule(key, result)
        delays.append(queue.pending_delay(key))
        assert ui.steps.count("webui-start") == attempt
        # Other wake-ups before the retry is due (the echo of the status write): no start,
        # and the backoff neither grows nor resets.
        for _ in range(3):
            between = await h.reconcile(h.kube.sessions[key])
            assert between.backing_off and not between.failed
            h.controller.schedule(key, between)
        assert ui.steps.count("webui-start") == attempt
        assert queue.backoff.failures(key) == attempt
        env.retry_due[key] -= 1000  # the retry is due
    assert delays == pytest.approx([10, 20, 40, 80], abs=0.5)
    stored = h.kube.sessions[key]
    assert stored["status"]["webUI"] == "Failed"
    message = "the web UI command exited at once; see its log with: kubectl session logs s1"
    assert cond(stored, "WebUIReady")["message"] == message
    assert cond(stored, "Ready")["reason"] == "Active"  # the session itself is usable
    failed = [m for _, r, m in h.kube.events if r == "WebUIFailed"]
    assert failed == [message] * 4  # identical: counted up on one Event object
    assert "SECRET" not in json.dumps(h.kube.events)

    ui.ui_failing = False
    ui_ports: list[Any] = []

    async def patch_service(namespace: str, name: str, patch: Any) -> Body | None:
        ui_ports.append(patch)  # the preview Service moves to the web UI's port
        return None

    async def patch_network_policy(namespace: str, name: str, patch: Any) -> Body | None:
        return None

    h.kube.patch_service = patch_service  # type: ignore[method-assign]
    h.kube.patch_network_policy = patch_network_policy  # type: ignore[method-assign]
    result = await h.reconcile(h.kube.sessions[key])
    assert not result.failed and not result.backing_off
    h.controller.schedule(key, result)
    assert queue.backoff.failures(key) == 0 and key not in env.retry_due
    assert h.kube.sessions[key]["status"]["webUI"] == "Running"
    assert ui_ports

    # Turned off: SIGTERM with the whole grace, on an exec allowed to outlast it.
    h.kube.add_session({**h.kube.sessions[key], "spec": {**new_session()["spec"], "webUI": False}})
    result = await h.reconcile(h.kube.sessions[key])
    assert h.kube.sessions[key]["status"]["webUI"] == "Stopped"
    ((argv, timeout),) = ui.stops
    assert argv[-1] == "300"  # RDEV_WEBUI_STOP_GRACE's 30 s, in tenths
    assert timeout == 30 + Settings().exec_timeout.total_seconds()


# A worker never waits for a project lock: its key runs again when the lock is free -----
@aio
async def test_a_taken_project_lock_requeues_the_key_when_released_without_backoff() -> None:
    h = Harness([pod("shop-1", T1)])
    flaky = FlakyExec()
    flaky.failing = False
    h.controller.env.execs = flaky
    queue, locks = h.controller.queue, h.controller.env.project_locks
    key = ("ns", "s1")
    h.kube.add_session(new_session())
    queue.backoff.when(key)  # one earlier failure: a blocked run neither grows nor resets it
    held = locks.acquire(("ns", "shop"))  # e.g. the finalizer removing a worktree
    await held.__aenter__()
    result = await asyncio.wait_for(h.reconcile(h.kube.sessions[key]), 1)
    assert result.blocked_on == ("ns", "shop")
    assert not result.failed and result.requeue_after is None
    assert flaky.steps == [] and h.kube.status_patches == []  # no exec, nothing written
    h.controller.schedule(key, result)
    assert len(queue) == 0 and queue.pending_delay(key) is None  # no timer, no busy loop
    assert queue.backoff.failures(key) == 1
    await held.__aexit__(None, None, None)
    assert len(queue) == 1  # woken by the release
    assert await queue.get() == key
    result = await h.reconcile(h.kube.sessions[key])
    queue.done(key)
    h.controller.schedule(key, result)
    assert h.kube.sessions[key]["status"]["phase"] == "Active"
    assert flaky.steps[0] == "checkout" and flaky.steps.count("checkout") == 1


# Stalled re-checks back off: the gap doubles from the interval up to the max ----------
def test_recheck_delay_doubles_the_gap_up_to_the_max() -> None:
    interval, cap = 60.0, 1800.0
    t, checks = 0.0, []  # the stall is found at t=0; each check schedules the next
    while t < 6 * 3600:
        t += recheck_delay(t, interval, cap)
        checks.append(t)
    assert [c / 60 for c in checks[:8]] == [1, 2, 4, 8, 16, 32, 62, 92]
    assert sum(1 for c in checks if c <= 3600) == 6  # the first hour: 6 re-checks
    assert sum(1 for c in checks if 3 * 3600 < c <= 4 * 3600) == 2  # then 2 an hour
    assert recheck_delay(0, interval, cap) == interval
    assert recheck_delay(10**9, interval, cap) == cap
    assert recheck_delay(10**9, 2 * cap, cap) == 2 * cap  # a longer interval wins


class BranchCheck:
    """Answers the checkout: the branch is missing (git exits 20) until ``missing`` is off."""

    def __init__(self) -> None:
        self.missing = True
        self.steps: list[str] = []

    async def run(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: Sequence[str],
        *,
        step: str,
        timeout_s: float | None = None,
    ) -> ExecResult:
        self.steps.append(step)
        if step == "checkout" and self.missing:
            return ExecResult(20, "", "")
        return await FlakyExec.run(
            _ALWAYS_OK, namespace, pod, container, argv, step=step, timeout_s=timeout_s
        )


_ALWAYS_OK = FlakyExec()
_ALWAYS_OK.failing = False


@aio
async def test_stalled_rechecks_back_off_reset_on_a_new_reason_and_survive_a_restart() -> None:
    h = Harness([pod("shop-1", T1)])
    check = BranchCheck()
    h.controller.env.execs = check
    key = ("ns", "s1")
    h.kube.add_session(new_session(container="dev"))
    delays = []
    for _ in range(8):
        result = await h.reconcile(h.kube.sessions[key])
        assert cond(h.kube.sessions[key], "Stalled")["reason"] == "BranchNotFound"
        assert result.requeue_after is not None
        delays.append(result.requeue_after)
        h.clock.now += timedelta(seconds=result.requeue_after)
    assert delays == [60, 60, 120, 240, 480, 960, 1800, 1800]

    # A restarted operator (no memory) keeps the gap: it comes from lastTransitionTime.
    h.controller.env.stalls.clear()
    result = await h.reconcile(h.kube.sessions[key])
    assert result.requeue_after == 1800

    # The reason changes while the Session stays Stalled: back to the interval, then doubling.
    renamed = pod("shop-1", T1)
    renamed["spec"] = {"containers": [{"name": "other"}]}
    renamed["metadata"]["resourceVersion"] = "2"
    h.store.pods.put(renamed)
    delays = []
    for _ in range(3):
        result = await h.reconcile(h.kube.sessions[key])
        assert cond(h.kube.sessions[key], "Stalled")["reason"] == "ContainerNotFound"
        assert result.requeue_after is not None
        delays.append(result.requeue_after)
        h.clock.now += timedelta(seconds=result.requeue_after)
    assert delays == [60, 60, 120]

    # It recovers, then stalls again: the backoff starts over.
    fixed = pod("shop-1", T1)
    fixed["metadata"]["resourceVersion"] = "3"
    h.store.pods.put(fixed)
    check.missing = False
    await h.reconcile(h.kube.sessions[key])
    assert h.kube.sessions[key]["status"]["phase"] == "Active"
    h.clock.now += timedelta(hours=1)
    renamed["metadata"]["resourceVersion"] = "4"
    h.store.pods.put(renamed)
    result = await h.reconcile(h.kube.sessions[key])
    assert cond(h.kube.sessions[key], "Stalled")["reason"] == "ContainerNotFound"
    assert result.requeue_after == 60


@aio
async def test_ended_session_from_an_older_operator_loses_its_ready_condition() -> None:
    """Level-based: Ready=False on an ended Session reads InProgress in kstatus forever."""
    reconciler, kube, _, _ = make()
    body = new_session()
    old = {"status": "False", "reason": "CheckedIn", "message": "checked in"}
    body["status"] = {
        "phase": "Ended",
        "observedGeneration": 1,
        "conditions": [
            {"type": "Ready", **old},
            {"type": "Reconciling", **old},
            {"type": "Stalled", **old},
        ],
    }
    kube.add_session(body)
    assert (await reconciler.reconcile(copy.deepcopy(body))).wrote_status is True
    stored = kube.sessions[("ns", "s1")]
    assert [c["type"] for c in stored["status"]["conditions"]] == ["Reconciling", "Stalled"]
    assert stored["status"]["phase"] == "Ended"
    assert kube.events == []  # the reason did not change: nothing to announce
    assert (await reconciler.reconcile(copy.deepcopy(stored))).wrote_status is False


@pytest.mark.parametrize(
    ("phase", "want"),
    [("Active", "rdev://team-a/s1"), ("Provisioning", None), ("Pending", None), ("Ended", None)],
)
def test_the_clone_url_is_there_exactly_while_active(phase: str, want: str | None) -> None:
    body: Body = {
        "metadata": {"name": "s1", "namespace": "team-a", "uid": "u1", "generation": 1},
        "spec": {"project": "shop", "branch": "topic"},
        "status": {"phase": phase, "cloneURL": "rdev://team-a/stale"},
    }
    ctx = new_ctx(body, SessionSpec.model_validate(body["spec"]), datetime.now(UTC))
    set_clone_url(ctx)
    assert ctx.status.clone_url == want
    assert ctx.dump().get("cloneURL") == want


# The preview Service is created first: read only on a 409 or when the store knows the name
@aio
async def test_a_new_sessions_preview_service_is_created_without_a_read() -> None:
    h = Harness([pod("shop-1", T1)])
    h.controller.env.execs = _ALWAYS_OK
    key = ("ns", "s1")
    h.kube.add_session(new_session())
    await h.reconcile(h.kube.sessions[key])
    assert h.kube.sessions[key]["status"]["phase"] == "Active"
    assert ("ns", "s1-preview") in h.kube.services
    assert h.kube.service_gets == []  # one POST, no GET before it
    # Known to the store as ours from then on: no request at all.
    h.clock.now += timedelta(minutes=10)
    await h.reconcile(h.kube.sessions[key])
    assert h.kube.service_gets == []


@pytest.mark.parametrize("in_store", [False, True])
def test_a_preview_name_held_by_another_object_stalls(in_store: bool) -> None:
    asyncio.run(_preview_name_taken(in_store))


async def _preview_name_taken(in_store: bool) -> None:
    h = Harness([pod("shop-1", T1)])
    h.controller.env.execs = _ALWAYS_OK
    key = ("ns", "s1")
    h.kube.add_session(new_session())
    foreign = preview_service("s1", owner_uid="uid-someone-else")
    h.kube.services[("ns", "s1-preview")] = foreign
    if in_store:
        h.store.services.put(foreign)
    await h.reconcile(h.kube.sessions[key])
    assert cond(h.kube.sessions[key], "Stalled")["reason"] == "PreviewNameTaken"
    assert h.kube.services[("ns", "s1-preview")] is foreign
    # Known to the store: read first (the create would fail); else the create's 409 reads it.
    assert h.kube.service_gets == ["s1-preview"]


@aio
async def test_our_preview_service_unknown_to_the_store_is_found_by_the_409() -> None:
    h = Harness([pod("shop-1", T1)])
    h.controller.env.execs = _ALWAYS_OK
    key = ("ns", "s1")
    h.kube.add_session(new_session())
    ours = preview_service("s1", owner_uid="uid-s1")
    ours["spec"] = {"ports": [{"name": "preview", "port": 1, "targetPort": 1}]}
    h.kube.services[("ns", "s1-preview")] = ours
    patches: list[Any] = []

    async def patch_service(namespace: str, name: str, patch: Any) -> Body | None:
        patches.append(patch)
        return None

    h.kube.patch_service = patch_service  # type: ignore[method-assign]
    await h.reconcile(h.kube.sessions[key])
    assert h.kube.sessions[key]["status"]["phase"] == "Active"
    assert h.kube.service_gets == ["s1-preview"]  # after the create's 409
    ((first, *_),) = patches  # moved to the preview port, guarded by its UID
    assert first["op"] == "test" and first["value"] == "svc-s1"


# One checkout exec per Session; Provisioning written only when the checkout is slow ------
class GatedExec(FlakyExec):
    """Answers like FlakyExec; the checkout waits for ``release`` (set: it returns at once),
    then exits with ``checkout_exit`` (20: the branch is missing)."""

    def __init__(self, checkout_exit: int = 0) -> None:
        super().__init__()
        self.failing = False
        self.release = asyncio.Event()
        self.release.set()
        self.running = asyncio.Event()
        self.checkout_exit = checkout_exit

    async def run(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: Sequence[str],
        *,
        step: str,
        timeout_s: float | None = None,
    ) -> ExecResult:
        if step == "checkout":
            self.running.set()
            await self.release.wait()
            if self.checkout_exit:
                self.steps.append(step)
                return ExecResult(self.checkout_exit, "", "")
        return await super().run(namespace, pod, container, argv, step=step, timeout_s=timeout_s)


def phases(kube: FakeKube) -> list[str | None]:
    return [p.get("phase") for p in kube.status_patches]


@aio
async def test_a_fast_checkout_goes_active_with_one_exec_and_one_status_write() -> None:
    h = Harness([pod("shop-1", T1)])
    execs = GatedExec()
    h.controller.env.execs = execs
    key = ("ns", "s1")
    h.kube.add_session(new_session())
    await h.reconcile(h.kube.sessions[key])
    assert h.kube.sessions[key]["status"]["phase"] == "Active"
    assert execs.steps == ["checkout"]  # fetch, branch check and worktree: one exec
    assert phases(h.kube) == ["Active"]  # no Provisioning write before it


def test_a_slow_checkout_writes_provisioning_while_it_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(checkout_step, "PROVISIONING_WRITE_DELAY_S", 0.01)
    asyncio.run(asyncio.wait_for(_slow_checkout_writes_provisioning(), 10))


async def _slow_checkout_writes_provisioning() -> None:
    h = Harness([pod("shop-1", T1)])
    execs = GatedExec()
    execs.release.clear()
    h.controller.env.execs = execs
    key = ("ns", "s1")
    h.kube.add_session(new_session())
    run = asyncio.create_task(h.reconcile(h.kube.sessions[key]))
    await asyncio.wait_for(execs.running.wait(), 5)
    for _ in range(500):  # the write comes after the delay, while the exec still runs
        if h.kube.status_patches:
            break
        await asyncio.sleep(0.01)
    assert not run.done()
    (written,) = h.kube.status_patches
    assert written["phase"] == "Provisioning"
    assert written["provisioningSince"] == "2026-01-01T00:01:00Z"
    assert written["provisioningStep"] == "fetch and checkout"
    assert written["podName"] == "shop-1" and written["branch"] == "feature-a"
    reconciling = next(c for c in written["conditions"] if c["type"] == "Reconciling")
    assert (reconciling["status"], reconciling["reason"]) == ("True", "Provisioning")
    execs.release.set()
    await asyncio.wait_for(run, 5)
    assert phases(h.kube) == ["Provisioning", "Active"]
    status = h.kube.sessions[key]["status"]
    assert "provisioningSince" not in status and "provisioningStep" not in status


def test_a_finding_after_a_slow_check_leaves_the_status_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Provisioning was written while the check ran; the stall takes back what it recorded,
    and its re-checks (as slow) write nothing more."""
    monkeypatch.setattr(checkout_step, "PROVISIONING_WRITE_DELAY_S", 0.01)
    asyncio.run(asyncio.wait_for(_finding_after_a_slow_check(), 10))


async def _finding_after_a_slow_check() -> None:
    h = Harness([pod("shop-1", T1)])
    execs = GatedExec(checkout_exit=20)
    execs.release.clear()
    h.controller.env.execs = execs
    key = ("ns", "s1")
    h.kube.add_session(new_session())

    async def slow_reconcile() -> None:
        run = asyncio.create_task(h.reconcile(h.kube.sessions[key]))
        await asyncio.wait_for(execs.running.wait(), 5)
        await asyncio.sleep(0.1)
        execs.release.set()
        await asyncio.wait_for(run, 5)
        execs.running.clear()
        execs.release.clear()

    await slow_reconcile()
    assert phases(h.kube) == ["Provisioning", "Failed"]
    status = h.kube.sessions[key]["status"]
    assert cond(h.kube.sessions[key], "Stalled")["reason"] == "BranchNotFound"
    assert "podName" not in status and "branch" not in status and "provisioningStep" not in status
    assert all(c["type"] != "CheckoutReady" for c in status["conditions"])
    h.clock.now += timedelta(minutes=1)
    await slow_reconcile()  # the re-check: as slow, and no write
    assert phases(h.kube) == ["Provisioning", "Failed"]
    assert execs.steps == ["checkout", "checkout"]


# The finalizer ---------------------------------------------------------------------
def deleted(body: Body) -> Body:
    body["metadata"]["deletionTimestamp"] = "2026-01-01T00:02:00Z"
    return body


@aio
async def test_a_new_session_gets_the_finalizer_before_anything_is_made() -> None:
    h, kube, _, _ = make()
    body = new_session()
    del body["metadata"]["finalizers"]
    kube.add_session(body)
    result = await h.reconcile(body)
    assert kube.finalizer_patches == ["s1"]
    assert kube.sessions[("ns", "s1")]["metadata"]["finalizers"] == [FINALIZER]
    # The same reconcile goes on from the patched Session (no pod here: Pending).
    assert result.wrote_status and phases(kube) == ["Pending"]
    await h.reconcile(kube.sessions[("ns", "s1")])
    assert kube.finalizer_patches == ["s1"]  # once


async def _finalizer_patch_raising(error: Exception) -> tuple[Result, FakeKube]:
    """A new Session's reconcile whose finalizer patch raises ``error``."""
    h, kube, _, _ = make()
    body = new_session()
    del body["metadata"]["finalizers"]
    kube.add_session(body)

    async def failing(body: Body, finalizer: str) -> Body | None:
        raise error

    kube.add_finalizer = failing  # type: ignore[method-assign]
    return await h.reconcile(body), kube


@aio
async def test_a_finalizer_patch_that_finds_a_newer_session_reads_it_again() -> None:
    result, kube = await _finalizer_patch_raising(Stale("422: the test failed"))
    assert result.failed and not result.wrote_status
    assert kube.events == [] and kube.status_patches == []


@aio
async def test_a_refused_request_is_a_reconcile_error_with_an_event() -> None:
    refusal = KubeError(422, "admission policy refused-by-test denied the request")
    result, kube = await _finalizer_patch_raising(refusal)
    assert result.failed
    assert [(r, "refused-by-test" in m) for _, r, m in kube.events] == [
        (Reason.RECONCILE_ERROR, True)
    ]


@aio
async def test_a_deleted_session_is_finalized_then_let_go() -> None:
    h, kube, _, _ = make()
    body = kube.add_session(deleted(new_session()))
    result = await h.reconcile(body)
    assert not result.failed
    assert kube.sessions[("ns", "s1")]["metadata"]["finalizers"] == []
    assert phases(kube)[-1] == "Ended"


@aio
async def test_a_deleted_session_without_our_finalizer_is_left_alone() -> None:
    h, kube, _, _ = make()
    body = deleted(new_session())
    body["metadata"]["finalizers"] = ["someone.else/keep"]
    kube.add_session(body)
    assert await h.reconcile(body) == Result()
    assert kube.finalizer_patches == [] and kube.status_patches == []


@aio
async def test_a_failing_finalizer_retries_then_keeps_the_worktree_and_lets_go() -> None:
    with pytest.MonkeyPatch.context() as patch:
        await _failing_finalizer(patch)


async def _failing_finalizer(patch: pytest.MonkeyPatch) -> None:
    h, kube, _, _ = make()
    h.controller.env.settings = Settings(delete_retries=3)

    async def unreachable(ctx: Any, env: Any) -> None:
        raise execresult.ExecError("the pod does not answer")

    patch.setattr("session_operator.steps.ending.remove_worktree", unreachable)
    body = kube.add_session(deleted(new_session()))
    key = ("ns", "s1")
    for attempt in (1, 2):
        result = await h.reconcile(kube.sessions[key])
        assert result.failed, attempt
        h.controller.schedule(key, result)
        assert kube.sessions[key]["metadata"]["finalizers"] == [FINALIZER]
    assert not [e for e in kube.events if e[1] == Reason.WORKTREE_KEPT]
    result = await h.reconcile(kube.sessions[key])
    assert not result.failed
    assert kube.sessions[key]["metadata"]["finalizers"] == []
    kept = [m for _, r, m in kube.events if r == Reason.WORKTREE_KEPT]
    assert kept == ["giving up on cleaning the worktree after 3 attempts: the pod does not answer"]
    assert body["metadata"]["name"] == "s1"


@aio
async def test_a_session_gone_from_the_api_leaves_nothing_behind() -> None:
    with pytest.MonkeyPatch.context() as patch:
        h, kube, _, _ = make()

        async def unreachable(ctx: Any, env: Any) -> None:
            raise execresult.ExecError("the pod does not answer")

        patch.setattr("session_operator.steps.ending.remove_worktree", unreachable)
        kube.add_session(deleted(new_session()))
        key = ("ns", "s1")
        result = await h.reconcile(kube.sessions[key])
        h.controller.schedule(key, result)
        assert h.controller.queue.backoff.failures(key) == 1
        assert key in h.controller.env.retry_due
        # Someone removed the finalizer by hand: the informer tells the controller.
        h.controller.forget(key)
        assert h.controller.queue.backoff.failures(key) == 0
        assert key not in h.controller.env.retry_due
        assert h.controller.queue.pending_delay(key) is None
