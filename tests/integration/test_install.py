"""``kubectl apply -k manifests/`` on the real control plane, and what it grants.

The install in rdev-system stays in place (every step is idempotent, so re-runs
pass); what a test adds beyond it lives in the test's own namespace.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from conftest import OperatorProcess, free_port
from kubehelpers import (
    IMAGE_PACKAGES,
    ROOT,
    SINGLE_NAMESPACE,
    create_project_pod,
    create_session,
    events_for,
    get_session,
    kubectl_run,
    kustomize,
    namespaced_overlay,
    patch_session,
    session_manifest,
    wait_condition,
    wait_for,
    wait_phase,
)
from rdev_api import shards

MANIFESTS = ROOT / "manifests"
NAMESPACE_READER = SINGLE_NAMESPACE / "namespace-reader.yaml"
SHARDED = MANIFESTS / "overlays" / "sharded"
SYSTEM_NS = "rdev-system"
NAME = "rdev-session-operator"
SA_USER = f"system:serviceaccount:{SYSTEM_NS}:{NAME}"
SA_GROUPS = [
    "system:serviceaccounts",
    f"system:serviceaccounts:{SYSTEM_NS}",
    "system:authenticated",
]
PEERING_CRD = "clusterkopfpeerings.kopf.dev"
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")

# (apiGroup, resource, verbs, resourceName): the operator's ClusterRoles, exactly.
OPERATOR_RULES: list[tuple[str, str, frozenset[str], str | None]] = [
    ("rdev.io", "sessions", frozenset({"get", "list", "watch", "patch"}), None),
    ("rdev.io", "sessions/status", frozenset({"patch"}), None),
    ("rdev.io", "sessions/finalizers", frozenset({"update"}), None),
    ("", "pods", frozenset({"get", "list", "watch", "patch"}), None),
    ("", "pods/exec", frozenset({"create", "get"}), None),
    ("", "services", frozenset({"get", "list", "watch", "create", "patch", "delete"}), None),
    ("networking.k8s.io", "ingresses", frozenset({"get", "create", "patch", "delete"}), None),
    (
        "networking.k8s.io",
        "networkpolicies",
        frozenset({"get", "create", "patch", "delete"}),
        None,
    ),
    ("", "events", frozenset({"create"}), None),
    # Session credentials: written, never read (no get, list or watch).
    ("", "serviceaccounts", frozenset({"create", "patch", "delete"}), None),
    ("rbac.authorization.k8s.io", "roles", frozenset({"create", "patch", "delete"}), None),
    ("rbac.authorization.k8s.io", "rolebindings", frozenset({"create", "patch", "delete"}), None),
    ("", "serviceaccounts/token", frozenset({"create"}), None),
    ("", "secrets", frozenset({"create", "patch", "delete"}), None),
    (
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        frozenset({"get", "list", "watch"}),
        None,
    ),
    ("kopf.dev", "clusterkopfpeerings", frozenset({"get", "list", "watch", "create"}), None),
    ("kopf.dev", "clusterkopfpeerings", frozenset({"patch"}), NAME),
]
CLUSTER_SCOPED = {"customresourcedefinitions", "clusterkopfpeerings"}


def errors_of(stderr: str) -> list[str]:
    return [
        line for line in stderr.splitlines() if line.strip() and not line.startswith("Warning:")
    ]


def crd_exists(api: client.ApiClient, name: str) -> bool:
    try:
        client.ApiextensionsV1Api(api).read_custom_resource_definition(name)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def namespace_exists(api: client.ApiClient, name: str) -> bool:
    try:
        client.CoreV1Api(api).read_namespace(name)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def first_install_errors(api: client.ApiClient) -> list[re.Pattern[str]]:
    """What a server-side dry run cannot do on a new cluster: it never creates the namespace."""
    allowed = []
    if not namespace_exists(api, SYSTEM_NS):
        allowed.append(re.compile(rf'namespaces "{SYSTEM_NS}" not found'))
    return allowed


def assert_only(errors: list[str], allowed: list[re.Pattern[str]]) -> None:
    unexpected = [e for e in errors if not any(p.search(e) for p in allowed)]
    assert not unexpected, "\n".join(unexpected)


def rendered(root: Path = MANIFESTS) -> list[dict[str, Any]]:
    return kustomize(root)


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"{kind}/{name} is not in manifests/")


@pytest.fixture(scope="module")
def installed(api: client.ApiClient, kubeconfig: str) -> list[dict[str, Any]]:
    """Server-side dry run, then the real apply; both converge on re-runs."""
    # A reader binding left by an interrupted run would widen what the SA may do.
    kubectl_run(kubeconfig, "delete", "-f", NAMESPACE_READER, "--ignore-not-found")
    allowed = first_install_errors(api)
    dry = kubectl_run(kubeconfig, "apply", "-k", MANIFESTS, "--dry-run=server", check=False)
    if dry.returncode != 0:
        assert_only(errors_of(dry.stderr), allowed)

    kubectl_run(kubeconfig, "apply", "--server-side", "-k", MANIFESTS)  # one pass, always

    # Installed: the dry run is now clean, as is every further apply.
    again = kubectl_run(kubeconfig, "apply", "-k", MANIFESTS, "--dry-run=server", check=False)
    assert again.returncode == 0 and not errors_of(again.stderr), again.stderr
    kubectl_run(kubeconfig, "apply", "--server-side", "-k", MANIFESTS)
    for crd in ("sessions.rdev.io", PEERING_CRD, "kopfpeerings.kopf.dev"):
        kubectl_run(kubeconfig, "wait", "--for=condition=Established", f"crd/{crd}")
    return rendered()


# What gets installed ---------------------------------------------------------------
def test_install_creates_everything(installed, api):
    kinds = {(o["kind"], o["metadata"]["name"]) for o in installed}
    assert {
        ("Namespace", SYSTEM_NS),
        ("CustomResourceDefinition", "sessions.rdev.io"),
        ("CustomResourceDefinition", PEERING_CRD),
        ("CustomResourceDefinition", "kopfpeerings.kopf.dev"),
        ("ServiceAccount", NAME),
        ("ClusterRole", NAME),
        ("ClusterRoleBinding", NAME),
        ("ClusterRole", f"{NAME}-cluster"),
        ("ClusterRoleBinding", f"{NAME}-cluster"),
        ("ClusterRole", "rdev-session-editor"),
        ("ClusterRole", "rdev-session-viewer"),
        ("ClusterRole", "rdev-session-admin"),
        ("Deployment", NAME),
        ("Service", f"{NAME}-metrics"),
        ("ClusterRole", "rdev-project-user"),
        ("ValidatingAdmissionPolicy", "rdev-project-access"),
        ("ValidatingAdmissionPolicyBinding", "rdev-project-access"),
        ("MutatingAdmissionPolicy", "rdev-created-by"),
        ("MutatingAdmissionPolicyBinding", "rdev-created-by"),
        ("ValidatingAdmissionPolicy", "rdev-created-by-immutable"),
        ("ValidatingAdmissionPolicyBinding", "rdev-created-by-immutable"),
        ("ValidatingAdmissionPolicy", "rdev-operator-writes"),
        ("ValidatingAdmissionPolicyBinding", "rdev-operator-writes"),
        ("FlowSchema", "rdev-operator"),
        ("PriorityLevelConfiguration", "rdev-operator"),
    } <= kinds
    svc = client.CoreV1Api(api).read_namespaced_service(f"{NAME}-metrics", SYSTEM_NS)
    assert [(p.name, p.port) for p in svc.spec.ports] == [("metrics", 8000)]

    # kwok "runs" the Deployment's pods: the ReplicaSet's pods passed admission.
    apps = client.AppsV1Api(api)

    def available() -> bool:
        status = apps.read_namespaced_deployment(NAME, SYSTEM_NS).status
        return status.available_replicas == 2 and status.updated_replicas == 2

    wait_for(available, timeout=90, interval=0.5, what="operator Deployment available")


def test_deployment_spec(installed):
    deploy = find(installed, "Deployment", NAME)
    assert deploy["spec"]["replicas"] == 2
    pod = deploy["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == NAME
    assert pod["automountServiceAccountToken"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert isinstance(sc["runAsUser"], int) and sc["runAsUser"] > 0
    env = {e["name"]: e for e in container["env"]}
    assert env["RDEV_PEERING"]["value"] == NAME
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8000, "health": 8080}
    assert env["RDEV_METRICS_PORT"]["value"] == "8000"
    assert env["RDEV_HEALTH_PORT"]["value"] == "8080"
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])


def test_pod_template_passes_restricted_pod_security(installed, api, kubeconfig):
    ns = client.CoreV1Api(api).read_namespace(SYSTEM_NS)
    assert ns.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    template = client.AppsV1Api(api).read_namespaced_deployment(NAME, SYSTEM_NS).spec.template
    spec = api.sanitize_for_serialization(template.spec)
    name = f"pss-probe-{uuid.uuid4().hex[:6]}"
    # Not the Deployment's labels, or its ReplicaSet would adopt the pod.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": SYSTEM_NS, "labels": {"rdev-test": "pss"}},
        "spec": spec,
    }
    created = kubectl_run(kubeconfig, "create", "-f", "-", stdin=json.dumps(pod))
    try:
        assert "PodSecurity" not in created.stderr, created.stderr
        core = client.CoreV1Api(api)
        wait_for(
            lambda: core.read_namespaced_pod(name, SYSTEM_NS).status.phase == "Running",
            timeout=60,
            what="probe pod Running",
        )
    finally:
        kubectl_run(
            kubeconfig, "delete", "pod", name, "-n", SYSTEM_NS, "--grace-period=0", "--wait=false"
        )

    # The control: the same pod without its securityContext is refused.
    loose = json.loads(json.dumps(pod))
    loose["metadata"]["name"] = f"{name}-loose"
    loose["spec"].pop("securityContext", None)
    for c in loose["spec"]["containers"]:
        c.pop("securityContext", None)
    refused = kubectl_run(
        kubeconfig, "create", "--dry-run=server", "-f", "-", stdin=json.dumps(loose), check=False
    )
    assert refused.returncode != 0
    assert "violates PodSecurity" in refused.stderr and "restricted" in refused.stderr


def test_single_namespace_overlay(installed, api, kubeconfig, namespace, tmp_path):
    objects = rendered(SINGLE_NAMESPACE)
    (container,) = find(objects, "Deployment", NAME)["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RDEV_NAMESPACES"] and env["RDEV_PEERING"] == NAME
    reader = find(objects, "ClusterRole", f"{NAME}-namespaces")
    assert reader["rules"] == [
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}
    ]
    # The roles are the base's, unchanged; the namespaced rights are bound in the
    # namespace served only (test_operator_powers.py asks the API server what that grants).
    for role in (NAME, f"{NAME}-cluster"):
        assert find(objects, "ClusterRole", role) == find(installed, "ClusterRole", role)
    assert find(objects, "RoleBinding", NAME)["metadata"]["namespace"] == env["RDEV_NAMESPACES"]
    assert NAME not in {o["metadata"]["name"] for o in objects if o["kind"] == "ClusterRoleBinding"}
    # The namespace served must exist before the install: its RoleBinding lives there.
    allowed = []
    if not namespace_exists(api, env["RDEV_NAMESPACES"]):
        allowed.append(re.compile(rf'namespaces "{env["RDEV_NAMESPACES"]}" not found'))
    dry = kubectl_run(kubeconfig, "apply", "-k", SINGLE_NAMESPACE, "--dry-run=server", check=False)
    if dry.returncode != 0:
        assert_only(errors_of(dry.stderr), allowed)
    # Set to serve a namespace that exists, as its comment says, it applies cleanly.
    serving = namespaced_overlay(tmp_path / "overlay", namespace)
    dry = kubectl_run(kubeconfig, "apply", "-k", serving, "--dry-run=server", check=False)
    assert dry.returncode == 0 and not errors_of(dry.stderr), dry.stderr


def test_sharded_overlay(installed, kubeconfig):
    objects = rendered(SHARDED)
    assert "Deployment" not in {o["kind"] for o in objects}
    sts = find(objects, "StatefulSet", NAME)
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    count = int(env["RDEV_SHARDS"])
    # 2N replicas; RDEV_SHARD unset: each pod's shard is its ordinal modulo N (POD_NAME).
    assert count > 1 and sts["spec"]["replicas"] == 2 * count
    assert "RDEV_SHARD" not in env and "POD_NAME" in env
    owners = Counter(k % count for k in range(sts["spec"]["replicas"]))
    assert owners == dict.fromkeys(range(count), 2)
    # Equal slices until `kubectl session shards` plans the boundaries.
    assert env["RDEV_SHARD_BOUNDARIES"] == ""
    # The pod spec is the base Deployment's, but for the shard count and boundaries.
    base = find(installed, "Deployment", NAME)["spec"]["template"]
    ours = json.loads(json.dumps(sts["spec"]["template"]))
    ours["spec"]["containers"][0]["env"] = [
        e
        for e in ours["spec"]["containers"][0]["env"]
        if e["name"] not in ("RDEV_SHARDS", "RDEV_SHARD_BOUNDARIES")
    ]
    assert ours == base
    # Each shard's replicas keep alive exactly the peering objects of the shards.
    role = find(objects, "ClusterRole", f"{NAME}-cluster")
    (keepalive,) = [r for r in role["rules"] if "patch" in r["verbs"]]
    assert keepalive["resources"] == ["clusterkopfpeerings"]
    assert keepalive["resourceNames"] == [
        shards.peering_name(env["RDEV_PEERING"], i, count) for i in range(count)
    ]
    pdb = find(objects, "PodDisruptionBudget", NAME)
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1  # one pod at a time: every shard keeps one
    dry = kubectl_run(kubeconfig, "apply", "-k", SHARDED, "--dry-run=server", check=False)
    assert dry.returncode == 0 and not errors_of(dry.stderr), dry.stderr


# Least privilege -------------------------------------------------------------------------
def review(
    api: client.ApiClient,
    verb: str,
    group: str,
    resource: str,
    *,
    name: str | None = None,
    user: str = SA_USER,
    groups: list[str] | None = None,
) -> bool:
    plural, _, sub = resource.partition("/")
    attrs: dict[str, Any] = {"verb": verb, "group": group, "resource": plural}
    if sub:
        attrs["subresource"] = sub
    if name:
        attrs["name"] = name
    if plural not in CLUSTER_SCOPED:
        attrs["namespace"] = "default"
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": SA_GROUPS if groups is None else groups,
            "resourceAttributes": attrs,
        },
    }
    result = client.AuthorizationV1Api(api).create_subject_access_review(body)
    return bool(result.status.allowed)


def test_operator_cluster_role_is_exactly_what_the_code_calls(installed):
    rules = []
    # The namespaced rights (a namespaced install binds them per namespace) and the
    # cluster-scoped ones, each bound to the ServiceAccount.
    for role_name, cluster_scoped in [(NAME, False), (f"{NAME}-cluster", True)]:
        for rule in find(installed, "ClusterRole", role_name)["rules"]:
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(key, []), rule
            if "secrets" in rule["resources"]:  # written for credentials, never read
                assert not {"get", "list", "watch"} & set(rule["verbs"]), rule
            assert "nonResourceURLs" not in rule, rule
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    assert (resource in CLUSTER_SCOPED) == cluster_scoped, (role_name, resource)
                    names = rule.get("resourceNames") or [None]
                    for name in names:
                        rules.append((group, resource, frozenset(rule["verbs"]), name))
        binding = find(installed, "ClusterRoleBinding", role_name)
        assert binding["roleRef"]["name"] == role_name
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": NAME, "namespace": SYSTEM_NS}
        ]
    # Compare as multisets: a frozenset's repr (and so any order by repr) varies by run.
    assert Counter(rules) == Counter(OPERATOR_RULES)


def test_service_account_can_do_exactly_what_is_listed(installed, api):
    granted: dict[tuple[str, str], set[str]] = {}
    for group, resource, verbs, name in OPERATOR_RULES:
        for verb in verbs:
            assert review(api, verb, group, resource, name=name), (verb, group, resource, name)
        if name is None:
            granted.setdefault((group, resource), set()).update(verbs)
    denied = []
    for (group, resource), verbs in granted.items():
        for verb in set(VERBS) - verbs:
            if review(api, verb, group, resource):
                denied.append((verb, group, resource))
    assert not denied, f"granted beyond the list: {denied}"
    # Only our peering object may be patched.
    assert not review(api, "patch", "kopf.dev", "clusterkopfpeerings")
    assert not review(api, "patch", "kopf.dev", "clusterkopfpeerings", name="someone-else")
    for verb, group, resource in [
        ("get", "", "secrets"),
        ("list", "", "secrets"),
        ("watch", "", "secrets"),
        ("delete", "", "pods"),
        ("create", "", "pods"),
        ("delete", "rdev.io", "sessions"),
        ("update", "rdev.io", "sessions"),
        ("create", "rdev.io", "sessions"),
        ("get", "", "configmaps"),
        ("list", "", "namespaces"),
        ("create", "events.k8s.io", "events"),
        ("get", "", "serviceaccounts"),
        ("list", "", "serviceaccounts"),
        ("get", "rbac.authorization.k8s.io", "roles"),
        ("list", "rbac.authorization.k8s.io", "rolebindings"),
        ("escalate", "rbac.authorization.k8s.io", "roles"),
        ("bind", "rbac.authorization.k8s.io", "roles"),
        ("create", "rbac.authorization.k8s.io", "clusterroles"),
        ("create", "rbac.authorization.k8s.io", "clusterrolebindings"),
        ("create", "", "pods/portforward"),
        ("list", "networking.k8s.io", "ingresses"),  # read one by name only: whose is it?
        ("update", "apiextensions.k8s.io", "customresourcedefinitions"),
    ]:
        assert not review(api, verb, group, resource), (verb, group, resource)


def test_user_roles_aggregate_into_the_builtin_roles(installed, api):
    for role, label in [
        ("rdev-session-viewer", "aggregate-to-view"),
        ("rdev-session-editor", "aggregate-to-edit"),
        ("rdev-session-admin", "aggregate-to-admin"),
    ]:
        obj = find(installed, "ClusterRole", role)
        assert obj["metadata"]["labels"][f"rbac.authorization.k8s.io/{label}"] == "true"
        for rule in obj["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
    editor = find(installed, "ClusterRole", "rdev-session-editor")
    assert "delete" not in {v for r in editor["rules"] for v in r["verbs"]}


def test_edit_can_create_and_check_in_but_not_delete(installed, api, kubeconfig, namespace):
    rbac = client.RbacAuthorizationV1Api(api)
    for user, role in [("alice", "edit"), ("bob", "view"), ("carol", "admin")]:
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": f"{user}-{role}"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role,
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}
                ],
            },
        )

    def can(user: str, verb: str, *extra: str) -> bool:
        out = kubectl_run(
            kubeconfig,
            "auth",
            "can-i",
            verb,
            "sessions.rdev.io",
            *extra,
            "-n",
            namespace,
            f"--as={user}",
            check=False,
        )
        return out.stdout.strip() == "yes"

    # The aggregation controller fills edit/view/admin in the background.
    wait_for(lambda: can("alice", "create"), timeout=60, what="edit aggregates the editor role")
    wait_for(lambda: can("bob", "list"), timeout=60, what="view aggregates the viewer role")
    wait_for(lambda: can("carol", "delete"), timeout=60, what="admin aggregates the admin role")

    session = session_manifest("alice-s", "shop", newBranch="topic/alice")
    session["metadata"]["namespace"] = namespace
    as_alice = ["-n", namespace, "--as=alice"]
    kubectl_run(kubeconfig, "create", "-f", "-", *as_alice, stdin=json.dumps(session))
    kubectl_run(
        kubeconfig,
        "patch",
        "sessions.rdev.io",
        "alice-s",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"checkin": {"autoMerge": True}}}),
        *as_alice,
    )
    assert get_session(api, namespace, "alice-s")["spec"]["checkin"] == {
        "autoMerge": True,
        "skipReview": False,
    }
    refused = kubectl_run(
        kubeconfig, "delete", "sessions.rdev.io", "alice-s", *as_alice, check=False
    )
    assert refused.returncode != 0 and "forbidden" in refused.stderr.lower()
    assert not can("alice", "patch", "--subresource=status")
    assert not can("alice", "delete")

    assert can("bob", "get") and can("bob", "watch")
    assert not can("bob", "create") and not can("bob", "patch")
    bob = kubectl_run(kubeconfig, "get", "sessions.rdev.io", "alice-s", "-n", namespace, "--as=bob")
    assert "alice-s" in bob.stdout

    kubectl_run(kubeconfig, "delete", "sessions.rdev.io", "alice-s", "-n", namespace, "--as=carol")


# The operator with its ServiceAccount's identity -----------------------------------------
def service_account_kubeconfig(admin_kubeconfig: str, path: Path, *, ca_file: bool = False) -> Path:
    """A kubeconfig with a TokenRequest token of the operator's ServiceAccount.

    With ``ca_file`` the CA is a file next to it, as in a pod, so that the
    client needs no temporary file.
    """
    token = subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            admin_kubeconfig,
            "create",
            "token",
            NAME,
            "-n",
            SYSTEM_NS,
            "--duration=1h",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    server = dict(cluster["cluster"])
    if ca_file:
        ca = path.with_suffix(".ca.crt")
        ca.write_bytes(base64.b64decode(server.pop("certificate-authority-data")))
        ca.chmod(0o644)
        server["certificate-authority"] = str(ca)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "rdev", "cluster": server}],
        "users": [{"name": NAME, "user": {"token": token}}],
        "contexts": [{"name": NAME, "context": {"cluster": "rdev", "user": NAME}}],
        "current-context": NAME,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o644 if ca_file else 0o600)
    return path


def test_operator_runs_a_session_lifecycle_as_its_service_account(
    installed, api, kubeconfig, namespace, repo, tmp_path
):
    sa_config = str(service_account_kubeconfig(kubeconfig, tmp_path / "sa.kubeconfig"))
    who = kubectl_run(sa_config, "auth", "whoami", "-o", "json")
    assert json.loads(who.stdout)["status"]["userInfo"]["username"] == SA_USER
    assert kubectl_run(sa_config, "get", "secrets", "-n", namespace, check=False).returncode != 0

    operator = OperatorProcess(
        sa_config,
        namespace,
        tmp_path / "operator.log",
        RDEV_PEERING=NAME,
        RDEV_PEERING_LIFETIME="15s",
        POD_NAME="sa-operator",
        RDEV_INGRESS_CLASS="rdev-test",
        RDEV_INGRESS_HOST_TEMPLATE="{session}.{namespace}.rdev.test",
    )
    core = client.CoreV1Api(api)
    net = client.NetworkingV1Api(api)
    custom = client.CustomObjectsApi(api)
    # Limited to the test's namespace, the operator runs as the single-namespace
    # overlay installs it: the base rules plus reading Namespaces.
    kubectl_run(kubeconfig, "apply", "--server-side", "-f", NAMESPACE_READER)
    try:
        operator.start()
        create_project_pod(api, namespace, "shop", repo)
        # With a credential: the Role it makes passes the API server's escalation check
        # (the operator holds every right it grants) and operator-writes.yaml.
        create_session(
            api,
            namespace,
            session_manifest("sa1", "shop", newBranch="topic/sa", credential=True),
        )
        # Peering: an older, dead entry may hold the operator back for one lifetime.
        s = wait_condition(api, namespace, "sa1", "Ready", timeout=90)
        assert s["status"]["phase"] == "Active"
        secret = wait_for(
            lambda: (core.read_namespaced_secret("sa1-credential", namespace).data or {}).get(
                "kubeconfig"
            ),
            timeout=30,
            what="the credential's kubeconfig",
        )
        cred_config = tmp_path / "cred.kubeconfig"
        cred_config.write_text(base64.b64decode(secret).decode())
        cred_config.chmod(0o600)
        got = kubectl_run(str(cred_config), "get", "sessions.rdev.io", "sa1", "-o", "name")
        assert got.stdout.strip() == "session.rdev.io/sa1"
        assert "rdev.io/finalizer" in s["metadata"]["finalizers"]
        assert core.read_namespaced_service("sa1-preview", namespace).spec.ports[0].port == 8080
        ingress = net.read_namespaced_ingress("sa1-preview", namespace)
        assert ingress.spec.rules[0].host == f"sa1.{namespace}.rdev.test"
        peers = custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", NAME)
        assert peers.get("status"), "the operator keeps its entry in the peering object"

        patch_session(api, namespace, "sa1", {"webUI": True})

        def web_ui(state: str, port: int) -> bool:
            got = get_session(api, namespace, "sa1")
            st = got.get("status") or {}
            return (
                st.get("webUI") == state
                and st.get("servicePort") == port
                and st.get("observedGeneration") == got["metadata"]["generation"]
            )

        wait_for(lambda: web_ui("Running", 3001), timeout=60, what="web UI running")
        assert core.read_namespaced_service("sa1-preview", namespace).spec.ports[0].port == 3001
        assert net.read_namespaced_network_policy("sa1-webui", namespace).spec.pod_selector
        patch_session(api, namespace, "sa1", {"webUI": False})
        wait_for(lambda: web_ui("Stopped", 8080), timeout=60, what="web UI stopped")

        patch_session(api, namespace, "sa1", {"checkin": {"skipReview": True}})
        ended = wait_phase(api, namespace, "sa1", "Ended", timeout=60)
        assert ended["status"]["conditions"]

        def gone(read: Any, name: str) -> bool:
            try:
                read(name, namespace)
            except ApiException as exc:
                return exc.status == 404
            return False

        wait_for(lambda: gone(core.read_namespaced_service, "sa1-preview"), what="Service gone")
        rbac = client.RbacAuthorizationV1Api(api)
        for read in (
            core.read_namespaced_secret,
            core.read_namespaced_service_account,
            rbac.read_namespaced_role,
            rbac.read_namespaced_role_binding,
        ):
            wait_for(lambda r=read: gone(r, "sa1-credential"), what="credential objects gone")
        denied = kubectl_run(str(cred_config), "get", "sessions.rdev.io", "sa1", check=False)
        assert denied.returncode != 0
        wait_for(lambda: gone(net.read_namespaced_ingress, "sa1-preview"), what="Ingress gone")

        custom.delete_namespaced_custom_object("rdev.io", "v1alpha1", namespace, "sessions", "sa1")
        wait_for(
            lambda: gone(
                lambda n, ns: custom.get_namespaced_custom_object(
                    "rdev.io", "v1alpha1", ns, "sessions", n
                ),
                "sa1",
            ),
            timeout=60,
            what="Session deleted (finalizer released)",
        )

        # Events were posted (core/v1 create), under this process's name.
        ours = wait_for(
            lambda: [e for e in events_for(api, namespace, "sa1") if e.reporting_component == NAME],
            timeout=30,
            what="an Event the operator posted",
        )
        assert {e.reporting_instance for e in ours} == {"sa-operator"}
    finally:
        operator.stop()
        kubectl_run(kubeconfig, "delete", "-f", NAMESPACE_READER, "--ignore-not-found")

    log = operator.logs()
    refused = [
        line for line in log.splitlines() if re.search(r"\(403\)|forbidden", line, re.IGNORECASE)
    ]
    assert not refused, "\n".join(refused[:20])


def test_manifests_hold_no_secrets(installed):
    """The token is projected into the pod; nothing in the install holds or reads a Secret
    (the operator writes session credentials' Secrets, and reads none)."""
    assert not [o for o in installed if o["kind"] == "Secret"]
    for role in (o for o in installed if o["kind"] in ("ClusterRole", "Role")):
        for rule in role["rules"]:
            if "secrets" in rule["resources"]:
                assert set(rule["verbs"]) <= {"create", "patch", "delete"}, role["metadata"]
                assert role["metadata"]["name"] == NAME


# The image's venv: non-root, read-only root filesystem ------------------------------------
IMAGE_UID = 65532
SYSTEM_PYTHON = Path("/usr/bin/python3.11")


@pytest.fixture
def image_venv() -> Iterator[Path]:
    """The builder stage's steps: a wheel, a pip-less venv with it and its dependencies.

    Built where the image's user may read it (not under pytest's 0700 folders),
    with a system Python 3.11 as the image has one, and removed afterwards.
    """
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("setpriv")):
        pytest.skip("needs root, unshare and setpriv to run as another user on a read-only root")
    if not SYSTEM_PYTHON.exists():
        pytest.skip(f"needs {SYSTEM_PYTHON}, readable by uid {IMAGE_UID}")
    base = Path(tempfile.mkdtemp(prefix="rdev-image-"))
    try:
        base.chmod(0o755)
        context = base / "context"
        context.mkdir()
        shutil.copy2(ROOT / "pyproject.toml", context / "pyproject.toml")
        for package in IMAGE_PACKAGES:
            shutil.copytree(
                ROOT / "operator" / package,
                context / "operator" / package,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
        pip = str(ROOT / ".venv" / "bin" / "pip")
        venv = base / "venv"
        wheels = base / "wheels"

        def run(*argv: str) -> None:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
            assert done.returncode == 0, f"{argv}: {done.stderr[-3000:]}"

        run(pip, "wheel", "--no-deps", "--quiet", "--wheel-dir", str(wheels), str(context))
        run(str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(venv))
        (wheel,) = wheels.glob("*.whl")
        run(pip, "--python", str(venv / "bin" / "python"), "install", "-q", "--compile", str(wheel))
        # The operator talks plain aiohttp: no generated client is installed (the
        # official one is the plugin's extra).
        for site in venv.glob("lib/python3*/site-packages"):
            assert (site / "aiohttp").is_dir()
            assert not (site / "kubernetes_asyncio").exists()
            assert not (site / "kubernetes").exists()
        assert not (venv / "bin" / "pip").exists()
        yield venv
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_packaged_operator_runs_as_non_root_on_a_read_only_root(
    installed, api, kubeconfig, namespace, repo, tmp_path, image_venv
):
    """The installed package, as uid 65532 with every filesystem read-only (not even
    /tmp writable), the ServiceAccount's token and the Deployment's variables."""
    sa_dir = Path(tempfile.mkdtemp(prefix="rdev-sa-", dir=image_venv.parent))
    sa_dir.chmod(0o755)
    sa_config = service_account_kubeconfig(kubeconfig, sa_dir / "kubeconfig", ca_file=True)
    health, metrics = free_port(), free_port()
    env = {
        "PATH": f"{image_venv / 'bin'}:/usr/bin:/bin",
        "HOME": "/nonexistent",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "KUBECONFIG": str(sa_config),
        "RDEV_NAMESPACES": namespace,
        "RDEV_PEERING": NAME,
        "RDEV_PEERING_LIFETIME": "15s",
        "RDEV_HEALTH_PORT": str(health),
        "RDEV_METRICS_PORT": str(metrics),
        "RDEV_WEBUI_COMMAND": f"{sys.executable} {ROOT / 'tests' / 'fake_webui.py'}",
        "RDEV_WEBUI_HEALTH_PATH": "",  # the stand-in serves no page (as in conftest.py)
        "POD_NAME": "image-operator",
        "POD_ID": "image-operator",
    }
    # A private mount namespace: / read-only there (and /tmp with it), then the
    # image's numeric user without a passwd entry, the environment as in the pod.
    script = (
        "mount -o remount,bind,ro / && { ! mountpoint -q /tmp || mount -o remount,bind,ro /tmp; }"
        " && exec setpriv"
        f" --reuid={IMAGE_UID} --regid={IMAGE_UID} --clear-groups --no-new-privs"
        " env -i "
        + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
        + " python -m session_operator"
    )
    kubectl_run(kubeconfig, "apply", "--server-side", "-f", NAMESPACE_READER)
    log_path = tmp_path / "operator.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd="/",
        )
    try:

        def healthy() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"operator exited: {log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=1):
                    return True
            except OSError:
                return False

        wait_for(healthy, timeout=60, interval=0.2, what="liveness endpoint")
        status = Path(f"/proc/{proc.pid}/status").read_text()
        assert re.search(rf"^Uid:\s+{IMAGE_UID}\s", status, re.MULTILINE), status

        create_project_pod(api, namespace, "shop", repo)
        create_session(
            api, namespace, session_manifest("ro1", "shop", newBranch="topic/ro", webUI=True)
        )
        s = wait_condition(api, namespace, "ro1", "Ready", timeout=90)
        assert s["status"]["webUI"] == "Running"
        patch_session(api, namespace, "ro1", {"checkin": {"skipReview": True}})
        wait_phase(api, namespace, "ro1", "Ended", timeout=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5) as resp:
            assert b'rdev_exec_total{outcome="ok",shard="0",step="checkout"} 1.0' in resp.read()
        events = wait_for(lambda: events_for(api, namespace, "ro1"), timeout=30, what="Events")
        assert {e.reporting_instance for e in events} == {"image-operator"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        kubectl_run(kubeconfig, "delete", "-f", NAMESPACE_READER, "--ignore-not-found")
    log = log_path.read_text(errors="replace")
    assert not re.search(
        r"Read-only file system|Permission denied|Traceback|\(403\)|Forbidden", log
    ), log[-3000:]


def test_single_apply_installs_on_a_fresh_cluster(fresh_cluster, tmp_path):
    """One `kubectl apply -k manifests/` on an empty cluster; the operator then creates
    the peering object its replicas share."""
    _env, kubeconfig = fresh_cluster
    out = subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, "apply", "-k", str(MANIFESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    kubectl_run(kubeconfig, "wait", "--for=condition=Established", f"crd/{PEERING_CRD}")
    op = OperatorProcess(
        kubeconfig, "default", tmp_path / "op.log", RDEV_PEERING=NAME, RDEV_NAMESPACES=""
    ).start()
    try:
        cfg = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
        custom = client.CustomObjectsApi(client.ApiClient(cfg))

        def peering() -> dict | None:
            try:
                return custom.get_cluster_custom_object(
                    "kopf.dev", "v1", "clusterkopfpeerings", NAME
                )
            except ApiException:
                return None

        wait_for(peering, timeout=60, what="the operator's ClusterKopfPeering")
    finally:
        op.stop()
