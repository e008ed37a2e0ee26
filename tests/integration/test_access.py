"""Per-project access and the creator record (manifests/base/admission.yaml) on the real
control plane, with requests made as impersonated users.

The policies are cluster-scoped, so the module installs them once and removes what it
installed afterwards; the created-by policy applies to every namespace meanwhile, which
only adds one annotation to Sessions created then.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from conftest import OperatorProcess
from kubehelpers import (
    GROUP,
    PLURAL,
    ROOT,
    VERSION,
    create_project_pod,
    get_session,
    kubectl,
    service_account_kubeconfig,
    session_gone,
    session_manifest,
    wait_condition,
    wait_for,
    wait_phase,
)

BASE = ROOT / "manifests" / "base"
ADMISSION = BASE / "admission.yaml"
USER_ROLES = BASE / "user-roles.yaml"
RBAC = BASE / "rbac.yaml"
NAMESPACE_READER = ROOT / "manifests" / "overlays" / "single-namespace" / "namespace-reader.yaml"
ENFORCED = {"rdev.io/project-access": "enforced"}
CREATED_BY = "rdev.io/created-by"
PROJECT = "webapp"
# Who may do what: everyone edits Sessions (rdev-session-editor); only some may use projects.
ALLOWED = "alice"  # Role with resourceNames [webapp]
DENIED = "bob"  # editor only
ADMIN = ""  # the kubeconfig's own user, not impersonated
CEL_INTERNALS = ("<nil>", "no such key", "evaluation", "expression", "CEL")


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def refusal(call: Callable[[], Any]) -> str:
    """The API server's message for a request that must be refused by admission."""
    with pytest.raises(ApiException) as info:
        call()
    exc = info.value
    assert exc.status == 403, f"expected a refusal, got {exc.status}: {exc.body}"
    return str(json.loads(exc.body)["message"])


def readable(message: str) -> str:
    for internal in CEL_INTERNALS:
        assert internal not in message, f"{internal!r} in {message!r}"
    return message


# Objects and users -----------------------------------------------------------------------
class Cluster:
    """Admin access plus one client per impersonated user."""

    def __init__(self, api: client.ApiClient, kubeconfig: str) -> None:
        self.api = api
        self.kubeconfig = kubeconfig
        self.clients: dict[str, client.ApiClient] = {}

    def as_user(self, user: str) -> client.CustomObjectsApi:
        if user == ADMIN:
            return client.CustomObjectsApi(self.api)
        if user not in self.clients:
            # The admin user may impersonate; the header makes every request the user's.
            self.clients[user] = client.ApiClient(
                self.api.configuration, header_name="Impersonate-User", header_value=user
            )
        return client.CustomObjectsApi(self.clients[user])

    def create(
        self, user: str, namespace: str, body: dict[str, Any], *, dry_run: bool = False
    ) -> dict[str, Any]:
        body = json.loads(json.dumps(body))
        body["metadata"]["namespace"] = namespace
        extra = {"dry_run": "All"} if dry_run else {}
        return dict(
            self.as_user(user).create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, body, **extra
            )
        )

    def patch(
        self, user: str, namespace: str, name: str, body: Any, *, dry_run: bool = False
    ) -> dict[str, Any]:
        extra: dict[str, str] = {"dry_run": "All"} if dry_run else {}
        if isinstance(body, list):
            extra["_content_type"] = "application/json-patch+json"
        return dict(
            self.as_user(user).patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, body, **extra
            )
        )

    def grant(self, namespace: str, user: str, cluster_role: str) -> None:
        client.RbacAuthorizationV1Api(self.api).create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": f"{user}-{cluster_role}"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": cluster_role,
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}
                ],
            },
        )

    def grant_project(self, namespace: str, user: str, project: str) -> None:
        """What a namespace admin writes: "use" on one project, by resourceNames."""
        rbac = client.RbacAuthorizationV1Api(self.api)
        role = f"use-{project}"
        rbac.create_namespaced_role(
            namespace,
            {
                "metadata": {"name": role},
                "rules": [
                    {
                        "apiGroups": ["rdev.io"],
                        "resources": ["projects"],
                        "resourceNames": [project],
                        "verbs": ["use"],
                    }
                ],
            },
        )
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": f"{user}-{role}"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}
                ],
            },
        )

    def can(self, user: str, namespace: str, verb: str, resource: str, name: str = "") -> bool:
        body = {
            "spec": {
                "user": user,
                "groups": ["system:authenticated"],
                "resourceAttributes": {
                    "group": GROUP,
                    "resource": resource,
                    "verb": verb,
                    "namespace": namespace,
                    "name": name,
                },
            }
        }
        review = client.AuthorizationV1Api(self.api).create_subject_access_review(body)
        return bool(review.status.allowed)

    def users_ready(self, namespace: str) -> None:
        """Make ``namespace`` a team's namespace: everyone edits, alice uses webapp."""
        for user in (ALLOWED, DENIED):
            self.grant(namespace, user, "rdev-session-editor")
        self.grant_project(namespace, ALLOWED, PROJECT)
        # RBAC answers from a cache: wait until both grants are seen.
        wait_for(
            lambda: (
                self.can(DENIED, namespace, "create", "sessions")
                and self.can(ALLOWED, namespace, "use", "projects", PROJECT)
            ),
            timeout=30,
            what="the editor and project bindings",
        )

    def enforce(self, namespace: str) -> None:
        """Label the namespace and wait until admission sees the label (a cached lister)."""
        client.CoreV1Api(self.api).patch_namespace(namespace, {"metadata": {"labels": ENFORCED}})
        probe = session_manifest(f"probe-{uuid.uuid4().hex[:6]}", PROJECT, newBranch="t/probe")
        wait_for(
            lambda: refused(lambda: self.create(DENIED, namespace, probe, dry_run=True)),
            timeout=60,
            interval=0.2,
            what=f"project access enforced in {namespace}",
        )

    def close(self) -> None:
        for api in self.clients.values():
            api.close()


def refused(call: Callable[[], Any]) -> bool:
    try:
        call()
    except ApiException as exc:
        if exc.status == 403:
            return True
        raise
    return False


def ensure_absent(read: Callable[[], Any], delete: Callable[[], Any]) -> None:
    try:
        read()
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    delete()


def admin_name(api: client.ApiClient) -> str:
    review = client.AuthenticationV1Api(api).create_self_subject_review({})
    return str(review.status.user_info.username)


# Fixtures ----------------------------------------------------------------------------------
def existing(api: client.ApiClient, objects: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Which of ``objects`` the cluster already has (left by an install): those stay."""
    adm = client.AdmissionregistrationV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    custom = client.CustomObjectsApi(api)
    readers: dict[str, Callable[[str], Any]] = {
        "ValidatingAdmissionPolicy": adm.read_validating_admission_policy,
        "ValidatingAdmissionPolicyBinding": adm.read_validating_admission_policy_binding,
        "MutatingAdmissionPolicy": lambda n: custom.get_cluster_custom_object(
            "admissionregistration.k8s.io", "v1", "mutatingadmissionpolicies", n
        ),
        "MutatingAdmissionPolicyBinding": lambda n: custom.get_cluster_custom_object(
            "admissionregistration.k8s.io", "v1", "mutatingadmissionpolicybindings", n
        ),
        "ClusterRole": rbac.read_cluster_role,
    }
    found = set()
    for obj in objects:
        key = (obj["kind"], obj["metadata"]["name"])
        try:
            readers[key[0]](key[1])
        except ApiException as exc:
            if exc.status == 404:
                continue
            raise
        found.add(key)
    return found


@pytest.fixture(scope="module")
def cluster(api: client.ApiClient, kubeconfig: str) -> Iterator[Cluster]:
    """The policies and user roles, installed and enforced; removed afterwards."""
    served = kubectl(kubeconfig, "api-resources", "--api-group=admissionregistration.k8s.io")
    assert re.search(
        r"^mutatingadmissionpolicies\s.*admissionregistration\.k8s\.io/v1\s", served, re.M
    ), served
    objects = docs(ADMISSION) + docs(USER_ROLES)
    before = existing(api, objects)
    c = Cluster(api, kubeconfig)
    probe_ns = f"t-adm-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    try:
        kubectl(kubeconfig, "apply", "--server-side", "-f", USER_ROLES, "-f", ADMISSION)
        core.create_namespace({"metadata": {"name": probe_ns}})
        c.users_ready(probe_ns)
        c.enforce(probe_ns)

        # The creator record: a dry run comes back annotated with the admin's name.
        me = admin_name(api)
        probe = session_manifest("probe", PROJECT, newBranch="t/probe")
        probe["metadata"]["annotations"] = {CREATED_BY: "someone-else"}

        def mutated() -> bool:
            made = c.create(ADMIN, probe_ns, probe, dry_run=True)
            return bool(made["metadata"]["annotations"][CREATED_BY] == me)

        wait_for(mutated, timeout=60, interval=0.2, what="created-by policy in effect")
        c.create(ADMIN, probe_ns, probe)
        wait_for(
            lambda: refused(
                lambda: c.patch(
                    ADMIN,
                    probe_ns,
                    "probe",
                    {"metadata": {"annotations": {CREATED_BY: "x"}}},
                    dry_run=True,
                )
            ),
            timeout=60,
            interval=0.2,
            what="created-by immutability in effect",
        )
        yield c
    finally:
        c.close()
        ensure_absent(
            lambda: core.read_namespace(probe_ns), lambda: core.delete_namespace(probe_ns)
        )
        for obj in reversed(objects):
            if (obj["kind"], obj["metadata"]["name"]) not in before:
                kubectl(
                    kubeconfig,
                    "delete",
                    f"{obj['kind'].lower()}.{obj['apiVersion'].split('/')[0]}",
                    obj["metadata"]["name"],
                    "--ignore-not-found",
                )


@pytest.fixture
def team(cluster: Cluster, namespace: str) -> str:
    """An enforced namespace where bob edits Sessions and alice also uses webapp."""
    cluster.users_ready(namespace)
    cluster.enforce(namespace)
    return namespace


def alice_session(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return cluster.create(
        ALLOWED, namespace, session_manifest(name, PROJECT, newBranch=f"topic/{name}")
    )


# Per-project access ------------------------------------------------------------------------
def test_create_needs_use_on_the_project(cluster, team):
    assert not cluster.can(DENIED, team, "use", "projects", PROJECT)
    message = refusal(
        lambda: cluster.create(DENIED, team, session_manifest("s1", PROJECT, newBranch="topic/s1"))
    )
    assert f'user {DENIED} may not use project "{PROJECT}" in namespace "{team}"' in message
    assert f'needs verb "use" on projects.rdev.io "{PROJECT}"' in message

    made = alice_session(cluster, team, "s1")
    assert made["metadata"]["annotations"][CREATED_BY] == ALLOWED
    # resourceNames scopes the grant: another project is refused, naming that project.
    message = refusal(
        lambda: cluster.create(
            ALLOWED, team, session_manifest("s2", "billing", newBranch="topic/s2")
        )
    )
    assert 'project "billing"' in message and '"use"' in message


def test_grant_of_all_projects_and_by_group(cluster, team):
    """rdev-project-user (no resourceNames) admits every project."""
    cluster.grant(team, "carol", "rdev-session-editor")
    cluster.grant(team, "carol", "rdev-project-user")
    wait_for(lambda: cluster.can("carol", team, "use", "projects", "any"), timeout=30)
    for project in (PROJECT, "billing"):
        name = f"c-{project}"
        cluster.create("carol", team, session_manifest(name, project, newBranch=f"t/{name}"))


def test_checkin_and_spec_edits_need_use(cluster, team):
    alice_session(cluster, team, "s1")
    for spec in ({"checkin": {"skipReview": True}}, {"webUI": True}, {"expiresIn": "2h"}):
        message = refusal(lambda s=spec: cluster.patch(DENIED, team, "s1", {"spec": s}))
        assert f'project "{PROJECT}"' in message and 'verb "use"' in message
    assert "checkin" not in get_session(cluster.api, team, "s1")["spec"]
    # Metadata only is not a spec write, as the operator's finalizer is not.
    cluster.patch(DENIED, team, "s1", {"metadata": {"labels": {"team": "web"}}})
    cluster.patch(ALLOWED, team, "s1", {"spec": {"checkin": {"skipReview": True}}})
    assert get_session(cluster.api, team, "s1")["spec"]["checkin"]["skipReview"] is True


def test_unlabelled_namespace_keeps_todays_behaviour(cluster, namespace):
    cluster.users_ready(namespace)
    made = cluster.create(
        DENIED, namespace, session_manifest("free", PROJECT, newBranch="topic/free")
    )
    assert made["metadata"]["annotations"][CREATED_BY] == DENIED
    cluster.patch(DENIED, namespace, "free", {"spec": {"checkin": {}}})


# The operator's own writes -----------------------------------------------------------------
def operator_kubeconfig(api: client.ApiClient, kubeconfig: str, namespace: str, path: Path) -> str:
    """A kubeconfig with a token of a ServiceAccount holding the operator's ClusterRole rules."""
    core = client.CoreV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "operator"}})
    return service_account_kubeconfig(api, kubeconfig, namespace, "operator", path)


@pytest.fixture
def operator_role(cluster: Cluster, team: str) -> Iterator[str]:
    """The operator's ClusterRoles' rules (plus reading Namespaces, as the single-namespace
    overlay adds) for a ServiceAccount of the test's namespace; removed afterwards."""
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    roles = [d for d in docs(RBAC) + docs(NAMESPACE_READER) if d["kind"] == "ClusterRole"]
    rules = [rule for role in roles for rule in role["rules"]]
    name = f"rdev-test-operator-{team}"
    user = f"system:serviceaccount:{team}:operator"
    rbac.create_cluster_role({"metadata": {"name": name}, "rules": rules})
    try:
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": name},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": name,
                },
                "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": team}],
            }
        )
        wait_for(lambda: cluster.can(user, team, "patch", "sessions"), timeout=30)
        yield user
    finally:
        ensure_absent(
            lambda: rbac.read_cluster_role_binding(name),
            lambda: rbac.delete_cluster_role_binding(name),
        )
        rbac.delete_cluster_role(name)


def test_operator_writes_are_never_blocked(
    cluster, team, operator_role, repo, tmp_path, kubeconfig
):
    """Finalizer add and remove, status patches, all by an identity without "use"."""
    assert not cluster.can(operator_role, team, "use", "projects", PROJECT)
    assert not cluster.can(operator_role, team, "use", "projects")
    sa_config = operator_kubeconfig(cluster.api, kubeconfig, team, tmp_path / "op.kubeconfig")
    op = OperatorProcess(sa_config, team, tmp_path / "operator.log").start()
    try:
        create_project_pod(cluster.api, team, PROJECT, repo)
        manifest = session_manifest("run", PROJECT, newBranch="topic/run")
        manifest["metadata"]["annotations"] = {CREATED_BY: "mallory"}
        cluster.create(ALLOWED, team, manifest)
        s = wait_condition(cluster.api, team, "run", "Ready", timeout=90)
        assert s["status"]["phase"] == "Active"
        assert "rdev.io/finalizer" in s["metadata"]["finalizers"]
        assert s["status"]["createdBy"] == ALLOWED
        # The printer column, as people see it (columns are aligned, "WEB UI" has a space).
        header, row = kubectl(kubeconfig, "get", "sessions.rdev.io", "run", "-n", team).splitlines()
        assert row[header.index("OWNER") :].split()[0] == ALLOWED

        cluster.patch(ALLOWED, team, "run", {"spec": {"checkin": {"skipReview": True}}})
        ended = wait_phase(cluster.api, team, "run", "Ended", timeout=60)
        assert ended["status"]["createdBy"] == ALLOWED
        client.CustomObjectsApi(cluster.api).delete_namespaced_custom_object(
            GROUP, VERSION, team, PLURAL, "run"
        )
        wait_for(
            lambda: session_gone(cluster.api, team, "run"),
            timeout=60,
            what="finalizer released by the operator",
        )
    finally:
        op.stop()
    blocked = [
        line
        for line in op.logs().splitlines()
        if re.search(r"\(403\)|forbidden|ValidatingAdmissionPolicy", line, re.IGNORECASE)
    ]
    assert not blocked, "\n".join(blocked[:20])


# Who made a Session ------------------------------------------------------------------------
def test_created_by_is_the_requesting_user(cluster, namespace):
    cluster.users_ready(namespace)
    claimed = session_manifest("claimed", PROJECT, newBranch="topic/claimed")
    claimed["metadata"]["annotations"] = {CREATED_BY: "mallory", "note": "kept"}
    made = cluster.create(DENIED, namespace, claimed)
    assert made["metadata"]["annotations"] == {CREATED_BY: DENIED, "note": "kept"}
    bare = cluster.create(
        ALLOWED, namespace, session_manifest("bare", PROJECT, newBranch="topic/bare")
    )
    assert bare["metadata"]["annotations"] == {CREATED_BY: ALLOWED}


def test_created_by_cannot_be_changed_or_removed(cluster, namespace, kubeconfig):
    cluster.users_ready(namespace)
    cluster.create(DENIED, namespace, session_manifest("mine", PROJECT, newBranch="topic/mine"))
    for user in (DENIED, ADMIN):
        message = refusal(
            lambda u=user: cluster.patch(
                u, namespace, "mine", {"metadata": {"annotations": {CREATED_BY: "mallory"}}}
            )
        )
        assert f'records who created Session "mine" ({DENIED})' in message
        assert 'cannot be changed to "mallory"' in message
    message = refusal(
        lambda: cluster.patch(
            DENIED, namespace, "mine", {"metadata": {"annotations": {CREATED_BY: None}}}
        )
    )
    assert "cannot be removed" in message
    message = refusal(
        lambda: cluster.patch(
            DENIED, namespace, "mine", [{"op": "remove", "path": "/metadata/annotations"}]
        )
    )
    assert "cannot be removed" in message
    # Other annotations stay free, as kopf's are.
    cluster.patch(DENIED, namespace, "mine", {"metadata": {"annotations": {"note": "x"}}})
    assert get_session(cluster.api, namespace, "mine")["metadata"]["annotations"] == {
        CREATED_BY: DENIED,
        "note": "x",
    }


def test_reapplying_a_manifest_keeps_the_record(cluster, namespace, kubeconfig):
    """GitOps re-applies manifests that never mention the annotation: nothing is refused."""
    cluster.users_ready(namespace)
    for name, how in [("ssa", ["--server-side", "--field-manager=gitops"]), ("csa", [])]:
        manifest = session_manifest(name, PROJECT, newBranch=f"topic/{name}")
        manifest["metadata"]["namespace"] = namespace
        for _ in range(2):
            kubectl(
                kubeconfig, "apply", *how, "-f", "-", f"--as={DENIED}", stdin=json.dumps(manifest)
            )
        annotations = get_session(cluster.api, namespace, name)["metadata"]["annotations"]
        assert annotations[CREATED_BY] == DENIED


def test_refusals_show_no_cel_internals(cluster, team):
    alice_session(cluster, team, "s1")
    calls: list[Callable[[], Any]] = [
        lambda: cluster.create(DENIED, team, session_manifest("x", PROJECT, newBranch="t/x")),
        lambda: cluster.patch(DENIED, team, "s1", {"spec": {"checkin": {}}}),
        lambda: cluster.patch(
            ALLOWED, team, "s1", {"metadata": {"annotations": {CREATED_BY: "bob"}}}
        ),
        lambda: cluster.patch(ALLOWED, team, "s1", {"metadata": {"annotations": None}}),
        lambda: cluster.patch(
            ALLOWED, team, "s1", [{"op": "remove", "path": "/metadata/annotations"}]
        ),
    ]
    for call in calls:
        message = readable(refusal(call))
        assert re.search(r"may not use project|records who created", message), message
