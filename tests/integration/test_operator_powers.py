"""What the operator's ServiceAccount may do, as the API server enforces it.

The admission policy ``rdev-operator-writes`` (manifests/base/operator-writes.yaml) narrows
the operator's own writes whatever its RBAC grants: on pods only its session label, on
Services, Ingresses and NetworkPolicies only the ones it made, on the ServiceAccounts,
Roles, RoleBindings, Secrets and tokens of session credentials only those a Session owns,
of the credential's shape. The single-namespace overlay binds its namespaced rights in the
namespace it serves only.

The install in rdev-system stays in place, as in test_install.py; requests are made as the
operator by impersonating its ServiceAccount's user name.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kubehelpers import (
    ROOT,
    create_session,
    kubectl,
    kustomize,
    namespaced_overlay,
    overlay_env,
    session_manifest,
    wait_for,
)
from rdev_api import names
from session_operator import builders, credentials
from session_operator.kube import JSON_PATCH as JSON
from session_operator.kube import owner_guard

MANIFESTS = ROOT / "manifests"
NAME = "rdev-session-operator"
POLICY = "rdev-operator-writes"
DENIED_BY = f"ValidatingAdmissionPolicy '{POLICY}'"
MANAGED = {names.MANAGED_BY_LABEL: names.MANAGER}
MERGE = "application/merge-patch+json"  # as the operator sends them (kube.py)
VERBS = ("create", "patch", "delete")


def service_account_user(objects: list[dict[str, Any]]) -> str:
    """The user name the API server gives the operator's ServiceAccount."""
    (sa,) = [o for o in objects if o["kind"] == "ServiceAccount"]
    return f"system:serviceaccount:{sa['metadata']['namespace']}:{sa['metadata']['name']}"


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def refused(call: Callable[[], Any], *parts: str) -> str:
    """The policy's message for a request it must refuse; it names each of ``parts``."""
    with pytest.raises(ApiException) as info:
        call()
    exc = info.value
    assert exc.status == 403, f"expected the policy's refusal, got {exc.status}: {exc.body}"
    message = str(json.loads(exc.body)["message"])
    assert DENIED_BY in message, message
    for part in parts:
        assert part in message, message
    return message


@pytest.fixture(scope="module")
def installed(kubeconfig: str) -> list[dict[str, Any]]:
    """`kubectl apply -k manifests/` (idempotent; the Deployment need not run)."""
    kubectl(kubeconfig, "apply", "--server-side", "-k", MANIFESTS)
    return kustomize(MANIFESTS)


@pytest.fixture(scope="module")
def operator_api(installed: list[dict[str, Any]], kubeconfig: str) -> Iterator[client.ApiClient]:
    """The admin's connection, every request impersonating the operator's ServiceAccount."""
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    api = client.ApiClient(
        cfg, header_name="Impersonate-User", header_value=service_account_user(installed)
    )
    yield api
    api.close()


@pytest.fixture
def as_operator(operator_api: client.ApiClient, namespace: str) -> client.ApiClient:
    """The operator's client, once the API server enforces the policy in ``namespace``."""
    core = client.CoreV1Api(operator_api)
    probe = {"metadata": {"name": "policy-probe"}, "spec": {"ports": [{"port": 80}]}}

    def enforced() -> bool:
        try:
            core.create_namespaced_service(namespace, probe, dry_run="All")
        except ApiException as exc:
            return exc.status == 403 and DENIED_BY in str(exc.body)
        return False

    wait_for(enforced, timeout=60, interval=0.2, what=f"{POLICY} in effect")
    return operator_api


# The policy as shipped ---------------------------------------------------------------------
def test_policy_is_installed_for_the_operator_and_its_labels(installed):
    """Matched on the ServiceAccount the manifests create, with the operator's own labels."""
    policy = find(installed, "ValidatingAdmissionPolicy", POLICY)["spec"]
    binding = find(installed, "ValidatingAdmissionPolicyBinding", POLICY)["spec"]
    assert binding == {"policyName": POLICY, "validationActions": ["Deny"]}
    assert policy["failurePolicy"] == "Fail"
    (match,) = policy["matchConditions"]
    user = service_account_user(installed)
    assert match["expression"].strip() == f"request.userInfo.username == '{user}'"
    variables = {v["name"]: v["expression"] for v in policy["variables"]}
    assert variables["sessionLabel"] == f"'{names.SESSION_LABEL}'"
    assert variables["managedByLabel"] == f"'{names.MANAGED_BY_LABEL}'"
    assert variables["manager"] == f"'{names.MANAGER}'"


# Pods ----------------------------------------------------------------------------------------
def test_operator_may_only_set_the_session_label_of_a_pod(api, as_operator, namespace):
    core = client.CoreV1Api(api)
    op = client.CoreV1Api(as_operator)
    name = f"shop-{uuid.uuid4().hex[:6]}"
    annotations = {names.REPO_PATH_ANNOTATION: "/src/shop"}
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {
                "name": name,
                "labels": {names.PROJECT_LABEL: "shop"},
                "annotations": annotations,
            },
            "spec": {
                "containers": [{"name": "dev", "image": "project:dev"}],
                "automountServiceAccountToken": False,
            },
        },
    )

    def pod() -> Any:
        return core.read_namespaced_pod(name, namespace)

    # The operator's own writes: add, change and remove its label.
    for session in ("s1", "s2", None):
        op.patch_namespaced_pod(
            name, namespace, builders.pod_session_label_patch(session), _content_type=MERGE
        )
        assert pod().metadata.labels.get(names.SESSION_LABEL) == session

    image = {"spec": {"containers": [{"name": "dev", "image": "evil:latest"}]}}
    spec = (names.SESSION_LABEL, f'pod "{name}"', f'namespace "{namespace}"', "its spec")
    refused(lambda: op.patch_namespaced_pod(name, namespace, image), *spec)
    replace = [{"op": "replace", "path": "/spec/containers/0/image", "value": "evil:latest"}]
    refused(lambda: op.patch_namespaced_pod(name, namespace, replace), *spec)
    deadline = {"spec": {"activeDeadlineSeconds": 1}}
    refused(lambda: op.patch_namespaced_pod(name, namespace, deadline), *spec)
    # With the label in the same write: all or nothing.
    both = {**image, **builders.pod_session_label_patch("s1")}
    refused(lambda: op.patch_namespaced_pod(name, namespace, both), *spec)

    for patch, part in [
        ({"metadata": {"labels": {names.PROJECT_LABEL: "billing"}}}, "labels other than"),
        ({"metadata": {"labels": {"team": "web"}}}, "labels other than"),
        ({"metadata": {"labels": None}}, "labels other than"),
        ({"metadata": {"annotations": {names.REPO_PATH_ANNOTATION: "/tmp"}}}, "annotations"),
        ({"metadata": {"finalizers": ["example.com/hold"]}}, "finalizers"),
        (
            {
                "metadata": {
                    "ownerReferences": [
                        {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "1"}
                    ]
                }
            },
            "ownerReferences",
        ),
    ]:
        refused(
            lambda p=patch: op.patch_namespaced_pod(name, namespace, p, _content_type=MERGE),
            f"would also change its {part}",
        )

    now = pod()
    assert [c.image for c in now.spec.containers] == ["project:dev"]
    assert now.spec.active_deadline_seconds is None
    assert now.metadata.labels == {names.PROJECT_LABEL: "shop"}
    assert now.metadata.annotations == annotations
    assert not now.metadata.finalizers and not now.metadata.owner_references
    # Only the operator is held to this: the admin changes the image.
    core.patch_namespaced_pod(name, namespace, image)
    assert pod().spec.containers[0].image == "evil:latest"


# Services, Ingresses, NetworkPolicies --------------------------------------------------------
def test_operator_may_only_write_services_it_manages(api, as_operator, namespace):
    core = client.CoreV1Api(api)
    op = client.CoreV1Api(as_operator)
    web = {
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }
    core.create_namespaced_service(namespace, web)
    where = ('Service "web"', f'namespace "{namespace}"', "does not carry that label")
    rewire = {"spec": {"selector": {"app": "evil"}}}
    refused(lambda: op.patch_namespaced_service("web", namespace, rewire), *where)
    take_over = {"metadata": {"labels": MANAGED}}
    refused(lambda: op.patch_namespaced_service("web", namespace, take_over), *where)
    refused(lambda: op.delete_namespaced_service("web", namespace), *where, "may not delete it")
    foreign = core.read_namespaced_service("web", namespace)
    assert foreign.spec.selector == {"app": "web"} and not foreign.metadata.labels

    bare = {"metadata": {"name": "s1-preview"}, "spec": {"ports": [{"port": 8080}]}}
    refused(
        lambda: op.create_namespaced_service(namespace, bare),
        'Service "s1-preview"',
        "would be created without that label",
    )
    # Its own Service: created, its port swapped as the operator does it, then deleted.
    mine = {**bare, "metadata": {**bare["metadata"], "labels": MANAGED}}
    uid = op.create_namespaced_service(namespace, mine).metadata.uid
    op.patch_namespaced_service("s1-preview", namespace, builders.service_port_patch(3001))
    assert core.read_namespaced_service("s1-preview", namespace).spec.ports[0].port == 3001
    drop = {"metadata": {"labels": {names.MANAGED_BY_LABEL: None}}}
    refused(
        lambda: op.patch_namespaced_service("s1-preview", namespace, drop, _content_type=MERGE),
        "would lose that label",
    )
    op.delete_namespaced_service("s1-preview", namespace, body={"preconditions": {"uid": uid}})


def test_operator_may_only_write_ingresses_and_network_policies_it_manages(
    api, as_operator, namespace
):
    net, op = client.NetworkingV1Api(api), client.NetworkingV1Api(as_operator)
    backend = {"service": {"name": "s1-preview", "port": {"number": 8080}}}
    kinds: list[tuple[str, dict[str, Any], str]] = [
        ("Ingress", {"defaultBackend": backend}, "namespaced_ingress"),
        ("NetworkPolicy", {"podSelector": {}}, "namespaced_network_policy"),
    ]
    for kind, spec, suffix in kinds:
        create, patch, delete = (getattr(op, f"{verb}_{suffix}") for verb in VERBS)
        name = kind.lower()
        getattr(net, f"create_{suffix}")(
            namespace, {"metadata": {"name": f"{name}-foreign"}, "spec": spec}
        )
        where = (f'{kind} "{name}-foreign"', "does not carry that label")
        relabel = {"metadata": {"labels": MANAGED}}
        refused(partial(patch, f"{name}-foreign", namespace, relabel), *where)
        refused(partial(delete, f"{name}-foreign", namespace), *where, "may not delete it")
        bare = {"metadata": {"name": name}, "spec": spec}
        refused(partial(create, namespace, bare), "would be created without that label")
        made = create(namespace, {"metadata": {"name": name, "labels": MANAGED}, "spec": spec})
        patch(name, namespace, {"metadata": {"annotations": {"note": "x"}}})
        delete(name, namespace, body={"preconditions": {"uid": made.metadata.uid}})


# Session credentials: ServiceAccounts, Roles, RoleBindings, Secrets, tokens -------------------
def credential_meta(name: str, session: dict[str, Any], **labels: str) -> dict[str, Any]:
    meta = session["metadata"]
    owner = builders.owner_reference(meta["name"], meta["uid"])
    return {"name": name, "labels": {**MANAGED, **labels}, "ownerReferences": [owner]}


def test_operator_may_only_write_credentials_it_owns(api, as_operator, namespace):
    """Its own credential objects pass; anyone else's cannot be read (a patch answers with
    the object), changed, deleted or taken over; Roles, bindings and tokens keep their shape."""
    core, op = client.CoreV1Api(api), client.CoreV1Api(as_operator)
    op_rbac = client.RbacAuthorizationV1Api(as_operator)
    session = create_session(api, namespace, session_manifest("s1", "shop", newBranch="t/x"))
    name = names.credential_name("s1")

    # Someone else's Secret: no read through a no-op patch, no change, no delete.
    core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": "db-password"}, "stringData": {"password": "hunter2"}},
    )
    for patch in ({}, {"metadata": {"labels": MANAGED}}):
        message = refused(
            lambda p=patch: op.patch_namespaced_secret("db-password", namespace, p),
            'Secret "db-password"',
        )
        assert "hunter2" not in message and "aHVudGVyMg" not in message
    refused(lambda: op.delete_namespaced_secret("db-password", namespace), "may not delete it")
    # A foreign Secret of the credential's name, labelled like ours: not owned by a Session.
    core.create_namespaced_secret(namespace, {"metadata": {"name": name, "labels": MANAGED}})
    refused(lambda: op.patch_namespaced_secret(name, namespace, {}), "owned by a Session")
    refused(lambda: op.delete_namespaced_secret(name, namespace), "owned by a Session")
    core.delete_namespaced_secret(name, namespace)

    # Creating: the label, a Session owner and the credential's name are all required.
    bare = {"metadata": {"name": name}}
    refused(lambda: op.create_namespaced_secret(namespace, bare), "created without that label")
    unowned = {"metadata": {"name": name, "labels": MANAGED}}
    refused(lambda: op.create_namespaced_secret(namespace, unowned), "owned by a Session")
    misnamed = {"metadata": credential_meta("s1-token", session)}
    refused(lambda: op.create_namespaced_secret(namespace, misnamed), "named <session>-credential")

    # Its own: created empty, filled, the owner check, deleted; the same for the others.
    secret = op.create_namespaced_secret(namespace, {"metadata": credential_meta(name, session)})
    sa = op.create_namespaced_service_account(
        namespace, {"metadata": credential_meta(name, session)}
    )
    pod_rules = [
        {"apiGroups": [""], "resources": ["pods"], "resourceNames": ["p"], "verbs": ["get"]}
    ]
    role = op_rbac.create_namespaced_role(
        namespace, {"metadata": credential_meta(name, session), "rules": pod_rules}
    )
    subject = {"kind": "ServiceAccount", "name": name, "namespace": namespace}
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}
    binding = op_rbac.create_namespaced_role_binding(
        namespace,
        {"metadata": credential_meta(name, session), "roleRef": ref, "subjects": [subject]},
    )
    guard = owner_guard(session["metadata"]["uid"])  # the operator's owner check
    for patch_call, obj in [
        (op.patch_namespaced_secret, secret),
        (op.patch_namespaced_service_account, sa),
        (op_rbac.patch_namespaced_role, role),
        (op_rbac.patch_namespaced_role_binding, binding),
    ]:
        assert (
            patch_call(name, namespace, guard, _content_type=JSON).metadata.uid == obj.metadata.uid
        )
    fill = [{"op": "add", "path": "/data", "value": {"kubeconfig": "eA=="}}]
    op.patch_namespaced_secret(name, namespace, fill, _content_type=JSON)

    # Roles grant only the credential's rights, on named objects; a binding binds only its
    # own Role to its own account; a token only for a credential account, bound to its Secret.
    wide = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    # (RBAC's escalation check already refuses rights the operator lacks, e.g. reading
    # Secrets; the policy also refuses those it holds but a credential must not have.)
    patch_pod = [
        {"apiGroups": [""], "resources": ["pods"], "resourceNames": ["p"], "verbs": ["patch"]}
    ]
    for rules in (wide, patch_pod):
        refused(
            lambda r=rules: op_rbac.patch_namespaced_role(name, namespace, {"rules": r}),
            "may only grant get/watch on named Sessions",
        )
    other = credential_meta(names.credential_name("s3"), session)
    refused(
        lambda: op_rbac.create_namespaced_role_binding(
            namespace, {"metadata": other, "roleRef": ref, "subjects": [subject]}
        ),
        "may only bind the Role of its own name",
    )
    deployer = {**subject, "name": "deployer"}
    refused(
        lambda: op_rbac.patch_namespaced_role_binding(name, namespace, {"subjects": [deployer]}),
        "may only bind the Role of its own name",
    )
    request = credentials.token_request("s1", name, secret.metadata.uid, 600)
    token = op.create_namespaced_service_account_token(name, namespace, request)
    assert token.status.token
    elsewhere = credentials.token_request("s1", "db-password", "x", 600)
    refused(
        lambda: op.create_namespaced_service_account_token(name, namespace, elsewhere),
        "bound to the Secret of the same name",
    )
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "deployer"}})
    for_deployer = credentials.token_request("s1", "deployer", "x", 600)
    refused(
        lambda: op.create_namespaced_service_account_token("deployer", namespace, for_deployer),
        "may only request tokens for a ServiceAccount named <session>-credential",
    )

    for delete, obj in [
        (op.delete_namespaced_secret, secret),
        (op_rbac.delete_namespaced_role_binding, binding),
        (op_rbac.delete_namespaced_role, role),
        (op.delete_namespaced_service_account, sa),
    ]:
        delete(name, namespace, body={"preconditions": {"uid": obj.metadata.uid}})
    kept = core.read_namespaced_secret("db-password", namespace)
    assert kept.metadata.labels is None and kept.data


# Namespaced install --------------------------------------------------------------------------
def sar(api: client.ApiClient, user: str, verb: str, group: str, resource: str, ns: str) -> bool:
    plural, _, sub = resource.partition("/")
    attrs = {"verb": verb, "group": group, "resource": plural, "subresource": sub}
    if ns:
        attrs["namespace"] = ns
    namespace = user.split(":")[2]
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]
    body = {"spec": {"user": user, "groups": groups, "resourceAttributes": attrs}}
    review = client.AuthorizationV1Api(api).create_subject_access_review(body)
    return bool(review.status.allowed)


NAMESPACED_RIGHTS = [
    ("patch", "", "pods"),
    ("watch", "", "pods"),
    ("create", "", "pods/exec"),
    ("get", "", "pods/exec"),
    ("create", "", "services"),
    ("delete", "", "services"),
    ("create", "networking.k8s.io", "ingresses"),
    ("create", "networking.k8s.io", "networkpolicies"),
    ("patch", "rdev.io", "sessions"),
    ("patch", "rdev.io", "sessions/status"),
    ("create", "", "events"),
    ("create", "", "serviceaccounts"),
    ("create", "rbac.authorization.k8s.io", "roles"),
    ("create", "rbac.authorization.k8s.io", "rolebindings"),
    ("create", "", "serviceaccounts/token"),
    ("create", "", "secrets"),
    ("delete", "", "secrets"),
]
CLUSTER_RIGHTS = [
    ("watch", "apiextensions.k8s.io", "customresourcedefinitions"),
    ("watch", "kopf.dev", "clusterkopfpeerings"),
    ("list", "", "namespaces"),
]


def for_test_account(objects: list[dict[str, Any]], ns: str) -> list[dict[str, Any]]:
    """The overlay's roles and bindings for the ServiceAccount ``operator`` of ``ns``,
    cluster-scoped ones renamed for this test: the shared install binds rdev-system's
    account everywhere, so its rights cannot show what the overlay grants."""
    out = []
    for obj in objects:
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding", "RoleBinding"):
            continue
        obj = json.loads(json.dumps(obj))
        if obj["kind"] != "RoleBinding":
            obj["metadata"]["name"] += f"-{ns}"
        if obj["kind"] != "ClusterRole":
            obj["roleRef"]["name"] += f"-{ns}"
            obj["subjects"] = [{"kind": "ServiceAccount", "name": "operator", "namespace": ns}]
        out.append(obj)
    return out


def test_namespaced_install_binds_its_rights_in_its_namespace_only(
    api, kubeconfig, namespace, tmp_path: Path
):
    objects = kustomize(namespaced_overlay(tmp_path / "overlay", namespace))
    assert overlay_env(objects, "RDEV_NAMESPACES") == namespace
    (binding,) = [o for o in objects if o["kind"] == "RoleBinding"]
    assert binding["metadata"]["namespace"] == namespace
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": NAME,
    }
    cluster_wide = {o["roleRef"]["name"] for o in objects if o["kind"] == "ClusterRoleBinding"}
    assert cluster_wide == {f"{NAME}-cluster", f"{NAME}-namespaces"}

    rbac = for_test_account(objects, namespace)
    user = f"system:serviceaccount:{namespace}:operator"
    cluster_scoped = [o for o in rbac if o["kind"] != "RoleBinding"]
    try:
        kubectl(kubeconfig, "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(rbac))
        wait_for(
            lambda: sar(api, user, "patch", "", "pods", namespace),
            timeout=30,
            what="the RoleBinding seen by the authorizer",
        )
        for verb, group, resource in NAMESPACED_RIGHTS:
            assert sar(api, user, verb, group, resource, namespace), (verb, resource)
            assert not sar(api, user, verb, group, resource, "default"), (verb, resource)
            assert not sar(api, user, verb, group, resource, ""), (verb, resource)
        for verb, group, resource in CLUSTER_RIGHTS:
            assert sar(api, user, verb, group, resource, ""), (verb, resource)
    finally:
        for obj in reversed(cluster_scoped):
            kubectl(
                kubeconfig,
                "delete",
                f"{obj['kind'].lower()}.rbac.authorization.k8s.io",
                obj["metadata"]["name"],
                "--ignore-not-found",
            )
