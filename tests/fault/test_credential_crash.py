"""The operator killed in the middle of issuing a session credential converges.

The API server is made to refuse one step (a ValidatingAdmissionPolicy of the
test, in the test's namespace only): the operator gets that far and no further,
is killed there with SIGKILL, and a new operator finishes the job once the step
is allowed again. Whatever was made before the kill is taken over, never made a
second time, and the Secret holds no token until the last step.
"""

from __future__ import annotations

import base64
import signal
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config

from kubehelpers import (
    create_project_pod,
    create_session,
    events_for,
    get_session,
    session_manifest,
    wait_condition,
    wait_for,
)
from rdev_api import names

pytestmark = pytest.mark.fault

# Creation order (steps/credential.py): Secret, ServiceAccount, Role, RoleBinding, token.
# (the refused step, the objects made before it)
STEPS = {
    "serviceaccount": (("", "serviceaccounts", ""), ["Secret"]),
    "rolebinding": (
        ("rbac.authorization.k8s.io", "rolebindings", ""),
        ["Secret", "ServiceAccount", "Role"],
    ),
    "token": (
        ("", "serviceaccounts", "token"),
        ["Secret", "ServiceAccount", "Role", "RoleBinding"],
    ),
}
KINDS = ("Secret", "ServiceAccount", "Role", "RoleBinding")


def credential_objects(api: client.ApiClient, namespace: str, session: str) -> dict[str, list[Any]]:
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    selector = f"{names.SESSION_LABEL}={session}"
    return {
        "Secret": core.list_namespaced_secret(namespace, label_selector=selector).items,
        "ServiceAccount": core.list_namespaced_service_account(
            namespace, label_selector=selector
        ).items,
        "Role": rbac.list_namespaced_role(namespace, label_selector=selector).items,
        "RoleBinding": rbac.list_namespaced_role_binding(namespace, label_selector=selector).items,
    }


def probe(api: client.ApiClient, namespace: str, resource: str, sub: str) -> bool:
    """Whether the test's policy refuses such a create in the namespace right now."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    try:
        if resource == "rolebindings":
            rbac.create_namespaced_role_binding(
                namespace,
                {
                    "metadata": {"name": "probe"},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": "view",
                    },
                    "subjects": [
                        {"kind": "ServiceAccount", "name": "probe", "namespace": namespace}
                    ],
                },
                dry_run="All",
            )
        elif sub == "token":  # TokenRequest has no dry run: a real token of a probe account
            core.create_namespaced_service_account_token(
                "probe", namespace, {"spec": {"expirationSeconds": 600}}
            )
        else:
            core.create_namespaced_service_account(
                namespace, {"metadata": {"name": "probe-dry"}}, dry_run="All"
            )
    except client.exceptions.ApiException as exc:
        if "refused by test-refuse-" in str(exc.body):
            return True
        raise
    return False


@pytest.fixture
def refuse(api: client.ApiClient, namespace: str) -> Iterator[Any]:
    """Refuse creating one kind (or subresource) in this test's namespace, until lifted;
    both wait until the API server enforces the change (policies take a moment)."""
    admission = client.AdmissionregistrationV1Api(api)
    name = f"test-refuse-{uuid.uuid4().hex[:6]}"
    rule: list[tuple[str, str, str]] = []

    def install(group: str, resource: str, sub: str) -> None:
        rule.append((group, resource, sub))
        if sub == "token":
            client.CoreV1Api(api).create_namespaced_service_account(
                namespace, {"metadata": {"name": "probe"}}
            )
        admission.create_validating_admission_policy(
            {
                "metadata": {"name": name},
                "spec": {
                    "failurePolicy": "Fail",
                    "matchConstraints": {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": namespace}
                        },
                        "resourceRules": [
                            {
                                "apiGroups": [group],
                                "apiVersions": ["*"],
                                "operations": ["CREATE"],
                                "resources": [f"{resource}/{sub}" if sub else resource],
                            }
                        ],
                    },
                    "validations": [{"expression": "false", "message": f"refused by {name}"}],
                },
            }
        )
        admission.create_validating_admission_policy_binding(
            {
                "metadata": {"name": name},
                "spec": {"policyName": name, "validationActions": ["Deny"]},
            }
        )
        wait_for(lambda: probe(api, namespace, resource, sub), timeout=60, what=f"{name} in effect")

    def lift() -> None:
        for delete in (
            admission.delete_validating_admission_policy_binding,
            admission.delete_validating_admission_policy,
        ):
            try:
                delete(name)
            except client.exceptions.ApiException as exc:
                if exc.status != 404:
                    raise
        if rule:
            _, resource, sub = rule[0]
            wait_for(
                lambda: not probe(api, namespace, resource, sub),
                timeout=60,
                what=f"{name} lifted",
            )

    install.name = name  # type: ignore[attr-defined]
    install.lift = lift  # type: ignore[attr-defined]
    yield install
    lift()


@pytest.mark.parametrize("step", sorted(STEPS))
def test_killed_while_issuing_a_credential_converges(
    api, namespace, repo, operator_factory, refuse, tmp_path, step
):
    (group, resource, sub), made = STEPS[step]
    refuse(group, resource, sub)
    create_project_pod(api, namespace, "shop", repo)
    first = operator_factory()
    create_session(
        api, namespace, session_manifest("s", "shop", newBranch="topic/c", credential=True)
    )
    # The operator got as far as the refused step (its error names the test's policy).
    wait_for(
        lambda: [
            e
            for e in events_for(api, namespace, "s")
            if e.reason == "ReconcileError" and refuse.name in (e.message or "")
        ],
        timeout=90,
        what=f"the operator stopped at the {step} step",
    )
    first.kill(signal.SIGKILL)

    before = credential_objects(api, namespace, "s")
    assert sorted(k for k, v in before.items() if v) == sorted(made)
    assert all(len(v) <= 1 for v in before.values()), before
    (secret,) = before["Secret"]
    assert not secret.data, "no token is written before the last step"
    assert not (get_session(api, namespace, "s").get("status") or {}).get("credentialSecret")

    refuse.lift()
    operator_factory()
    wait_condition(api, namespace, "s", "Ready", timeout=90)

    def filled() -> Any:
        got = client.CoreV1Api(api).read_namespaced_secret(names.credential_name("s"), namespace)
        return got if got.data and names.CREDENTIAL_KEY in got.data else None

    now = wait_for(filled, timeout=90, what="the credential's token in its Secret")
    after = credential_objects(api, namespace, "s")
    assert {k: len(v) for k, v in after.items()} == dict.fromkeys(KINDS, 1)
    for kind in made:  # taken over, not made again
        assert after[kind][0].metadata.uid == before[kind][0].metadata.uid, kind
    assert set(now.data) == {names.CREDENTIAL_KEY}
    s = get_session(api, namespace, "s")
    assert s["status"]["credentialSecret"] == names.credential_name("s")

    path = tmp_path / "cred.kubeconfig"
    path.write_bytes(base64.b64decode(now.data[names.CREDENTIAL_KEY]))
    path.chmod(0o600)
    cred = config.new_client_from_config(config_file=str(path))
    got = client.CustomObjectsApi(cred).get_namespaced_custom_object(
        "rdev.io", "v1alpha1", namespace, "sessions", "s"
    )
    assert got["metadata"]["uid"] == s["metadata"]["uid"]
