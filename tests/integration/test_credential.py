"""A session's own credential (spec.credential) on the real control plane.

The kubeconfig in the credential Secret reads this Session and execs into its
pod (real git through pods/exec), and nothing else; when the session ends
(checkin, expiry, deletion) its Secret, RoleBinding, Role and ServiceAccount
are deleted and the token is refused (401) within seconds.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from kubehelpers import (
    GROUP,
    PLURAL,
    VERSION,
    create_project_pod,
    create_session,
    delete_session,
    events_for,
    exec_output,
    get_session,
    gone,
    kubectl_run,
    make_repo,
    patch_session,
    plugin,
    session_gone,
    session_manifest,
    wait_condition,
    wait_for,
    wait_phase,
)
from rdev_api import names

KINDS = ("ServiceAccount", "Role", "RoleBinding", "Secret")


def credential_client(kubeconfig_text: str, path: Path) -> client.ApiClient:
    path.write_text(kubeconfig_text)
    path.chmod(0o600)
    return config.new_client_from_config(config_file=str(path))


def read_kubeconfig(api: client.ApiClient, namespace: str, secret: str) -> str:
    data = client.CoreV1Api(api).read_namespaced_secret(secret, namespace).data or {}
    return base64.b64decode(data[names.CREDENTIAL_KEY]).decode()


def readers(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    core = client.CoreV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    return {
        "ServiceAccount": lambda n: core.read_namespaced_service_account(n, namespace),
        "Role": lambda n: rbac.read_namespaced_role(n, namespace),
        "RoleBinding": lambda n: rbac.read_namespaced_role_binding(n, namespace),
        "Secret": lambda n: core.read_namespaced_secret(n, namespace),
    }


def listers(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    core = client.CoreV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    return {
        "ServiceAccount": lambda s: core.list_namespaced_service_account(
            namespace, label_selector=s
        ),
        "Role": lambda s: rbac.list_namespaced_role(namespace, label_selector=s),
        "RoleBinding": lambda s: rbac.list_namespaced_role_binding(namespace, label_selector=s),
        "Secret": lambda s: core.list_namespaced_secret(namespace, label_selector=s),
    }


def credential_objects(api: client.ApiClient, namespace: str, session: str) -> dict[str, list[Any]]:
    selector = f"{names.SESSION_LABEL}={session}"
    return {kind: list(ls(selector).items) for kind, ls in listers(api, namespace).items()}


def all_gone(api: client.ApiClient, namespace: str, session: str) -> bool:
    name = names.credential_name(session)
    return all(gone(read, name) for read in readers(api, namespace).values())


def status_of(call: Any) -> int:
    """The HTTP status a call answers with (200 when it succeeds)."""
    try:
        call()
    except ApiException as exc:
        return int(exc.status)
    return 200


def exec_refused(api: client.ApiClient, namespace: str, pod: str) -> bool:
    try:
        exec_output(api, namespace, pod, ["true"])
    except ApiException as exc:
        return exc.status == 403 or "403" in str(exc.reason)
    return False


def get_as(cred: client.ApiClient, namespace: str, name: str) -> Any:
    return client.CustomObjectsApi(cred).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )


# The API server keeps a successful token check for 10 s (kube-apiserver's token cache,
# not configurable): a revoked token may pass that long after its Secret is deleted.
TOKEN_CACHE_S = 10
REVOKED_WITHIN_S = TOKEN_CACHE_S + 5


def revoked_within(cred: client.ApiClient, namespace: str, name: str) -> float:
    """Seconds until the credential's token is refused (401)."""
    started = time.monotonic()
    wait_for(
        lambda: status_of(lambda: get_as(cred, namespace, name)) == 401,
        timeout=30,
        interval=0.1,
        what="the credential refused (401)",
    )
    return time.monotonic() - started


def active_with_credential(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    """The Session once Ready and naming its credential Secret."""
    wait_condition(api, namespace, name, "Ready", timeout=90)

    def named() -> dict[str, Any] | None:
        got = get_session(api, namespace, name)
        return got if (got.get("status") or {}).get("credentialSecret") else None

    return wait_for(named, timeout=30, what=f"status.credentialSecret of {name}")


def said(api: client.ApiClient, namespace: str, name: str, text: str) -> None:
    """An Event on the Session says ``text`` (one reconcile's Normal steps share one Event)."""
    wait_for(
        lambda: [e for e in events_for(api, namespace, name) if text in (e.message or "")],
        timeout=30,
        what=f"an Event saying {text!r}",
    )


def test_credential_reaches_its_session_and_pod_only_and_dies_at_checkin(
    operator, api, namespace, repo, tmp_path
):
    pod = create_project_pod(api, namespace, "shop", repo)
    other_repo = make_repo(tmp_path / "other")
    other_pod = create_project_pod(api, namespace, "billing", other_repo)
    create_session(api, namespace, session_manifest("other", "billing", newBranch="topic/o"))
    create_session(
        api, namespace, session_manifest("s1", "shop", newBranch="topic/cred", credential=True)
    )
    s = active_with_credential(api, namespace, "s1")
    secret = names.credential_name("s1")
    assert s["status"]["credentialSecret"] == secret
    wait_condition(api, namespace, "other", "Ready", timeout=90)

    # One of each, owned by the Session, labelled as its children.
    objects = credential_objects(api, namespace, "s1")
    for kind in KINDS:
        (obj,) = objects[kind]
        assert obj.metadata.name == secret
        (owner,) = obj.metadata.owner_references
        assert (owner.kind, owner.name, owner.uid) == ("Session", "s1", s["metadata"]["uid"])
        assert obj.metadata.labels[names.MANAGED_BY_LABEL] == names.MANAGER
    (role,) = objects["Role"]
    rules = sorted(
        (r.api_groups, r.resources, r.resource_names, sorted(r.verbs)) for r in role.rules
    )
    assert rules == sorted(
        [
            (["rdev.io"], ["sessions"], ["s1"], ["get", "watch"]),
            ([""], ["pods"], [pod["metadata"]["name"]], ["get"]),
            ([""], ["pods/exec"], [pod["metadata"]["name"]], ["create", "get"]),
        ]
    )
    said(api, namespace, "s1", "credential issued in Secret s1-credential")

    text = read_kubeconfig(api, namespace, secret)
    doc = yaml.safe_load(text)
    assert doc["contexts"][0]["context"]["namespace"] == namespace
    assert doc["clusters"][0]["cluster"]["certificate-authority-data"]
    cred = credential_client(text, tmp_path / "cred.kubeconfig")
    who = client.AuthenticationV1Api(cred).create_self_subject_review(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    )
    assert who.status.user_info.username == f"system:serviceaccount:{namespace}:{secret}"

    # What it may do: read its Session, exec into its pod (real git in the worktree).
    assert get_as(cred, namespace, "s1")["metadata"]["name"] == "s1"
    checkout = s["status"]["checkoutPath"]
    out = exec_output(cred, namespace, pod["metadata"]["name"], ["git", "-C", checkout, "status"])
    assert "topic/cred" in out
    # ... and watch it (a watch with a metadata.name field selector is authorised by name).
    events = watch.Watch().stream(
        client.CustomObjectsApi(cred).list_namespaced_custom_object,
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        field_selector="metadata.name=s1",
        timeout_seconds=2,
    )
    assert {e["object"]["metadata"]["name"] for e in events} == {"s1"}
    # What it may not: other Sessions, other pods, any Secret, listing.
    custom = client.CustomObjectsApi(cred)
    core = client.CoreV1Api(cred)
    assert status_of(lambda: get_as(cred, namespace, "other")) == 403
    assert (
        status_of(lambda: custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL))
        == 403
    )
    assert status_of(lambda: core.list_namespaced_secret(namespace)) == 403
    assert status_of(lambda: core.read_namespaced_secret(secret, namespace)) == 403
    assert status_of(lambda: core.list_namespaced_pod(namespace)) == 403
    assert exec_refused(cred, namespace, other_pod["metadata"]["name"])
    assert (
        status_of(
            lambda: custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, "s1", {"spec": {"expiresIn": "48h"}}
            )
        )
        == 403
    )

    started = time.monotonic()
    patch_session(api, namespace, "s1", {"checkin": {"skipReview": True}})
    read_secret = readers(api, namespace)["Secret"]
    wait_for(lambda: gone(read_secret, secret), timeout=10, what="the Secret deleted")
    deleted = time.monotonic() - started
    took = revoked_within(cred, namespace, "s1") + deleted
    print(f"after checkin: Secret deleted in {deleted:.2f}s, token refused (401) in {took:.2f}s")
    assert took < REVOKED_WITHIN_S
    # As a person sees it: kubectl with that file (its words for a 401).
    plain = kubectl_run(
        str(tmp_path / "cred.kubeconfig"), "get", f"sessions.{GROUP}", "s1", check=False
    )
    assert plain.returncode == 1, plain.stderr
    assert "error: You must be logged in to the server" in plain.stderr, plain.stderr
    wait_for(lambda: all_gone(api, namespace, "s1"), timeout=30, what="credential objects gone")
    ended = wait_phase(api, namespace, "s1", "Ended", timeout=60)
    assert "credentialSecret" not in ended["status"]
    said(api, namespace, "s1", "credential revoked: Secret s1-credential deleted")
    # The worktree is kept as ever (only the credential went first).
    assert Path(checkout).is_dir()


def test_credential_set_later_renewed_on_extend_and_revoked_at_expiry(
    operator, api, namespace, repo, tmp_path
):
    create_project_pod(api, namespace, "shop", repo)
    create_session(
        api, namespace, session_manifest("s2", "shop", newBranch="topic/late", expiresIn="2m")
    )
    wait_condition(api, namespace, "s2", "Ready", timeout=90)
    assert credential_objects(api, namespace, "s2") == {kind: [] for kind in KINDS}

    patch_session(api, namespace, "s2", {"credential": True})
    s = active_with_credential(api, namespace, "s2")
    secret = names.credential_name("s2")
    core = client.CoreV1Api(api)
    first = core.read_namespaced_secret(secret, namespace).metadata.annotations
    assert first[names.TOKEN_REQUESTED_ANNOTATION] == s["status"]["expiresAt"]
    old = credential_client(read_kubeconfig(api, namespace, secret), tmp_path / "old")

    # Extended beyond the token's life: a new token in the same Secret, before the old ends.
    patch_session(api, namespace, "s2", {"expiresIn": "1h"})

    def renewed() -> Any:
        got = core.read_namespaced_secret(secret, namespace).metadata.annotations or {}
        later = got.get(names.TOKEN_REQUESTED_ANNOTATION)
        return got if later and later > first[names.TOKEN_REQUESTED_ANNOTATION] else None

    now = wait_for(renewed, timeout=30, what="a token for the extended session")
    assert now[names.TOKEN_EXPIRES_ANNOTATION] > first[names.TOKEN_EXPIRES_ANNOTATION]
    new = credential_client(read_kubeconfig(api, namespace, secret), tmp_path / "new")
    assert get_as(new, namespace, "s2")["metadata"]["name"] == "s2"
    assert len(credential_objects(api, namespace, "s2")["Secret"]) == 1

    # Expiry (expiresIn shorter than the session's age): both tokens die with the Secret.
    patch_session(api, namespace, "s2", {"expiresIn": "1s"})
    took = revoked_within(new, namespace, "s2")
    assert took < REVOKED_WITHIN_S
    assert status_of(lambda: get_as(old, namespace, "s2")) == 401
    wait_phase(api, namespace, "s2", "Expired", timeout=60)
    wait_for(lambda: all_gone(api, namespace, "s2"), timeout=30, what="credential objects gone")


def test_credential_revoked_at_deletion(operator, api, namespace, repo, tmp_path):
    create_project_pod(api, namespace, "shop", repo)
    create_session(
        api, namespace, session_manifest("s3", "shop", newBranch="topic/del", credential=True)
    )
    active_with_credential(api, namespace, "s3")
    cred = credential_client(
        read_kubeconfig(api, namespace, names.credential_name("s3")), tmp_path / "c"
    )
    assert get_as(cred, namespace, "s3")
    delete_session(api, namespace, "s3")
    assert revoked_within(cred, namespace, "s3") < REVOKED_WITHIN_S
    wait_for(lambda: session_gone(api, namespace, "s3"), timeout=60, what="Session gone")
    wait_for(lambda: all_gone(api, namespace, "s3"), timeout=30, what="credential objects gone")


def test_credential_cannot_be_unset_while_active(operator, api, kubeconfig, namespace, repo):
    create_project_pod(api, namespace, "shop", repo)
    create_session(
        api, namespace, session_manifest("s4", "shop", newBranch="topic/cel", credential=True)
    )
    active_with_credential(api, namespace, "s4")
    refusal = "credential cannot be unset while the session is Active"
    with pytest.raises(ApiException) as info:
        patch_session(api, namespace, "s4", {"credential": False})
    assert info.value.status == 422
    assert refusal in json.loads(info.value.body)["message"]
    removed = kubectl_run(
        kubeconfig,
        "patch",
        f"sessions.{GROUP}",
        "s4",
        "-n",
        namespace,
        "--type=json",
        "-p",
        '[{"op": "remove", "path": "/spec/credential"}]',
        check=False,
    )
    assert removed.returncode != 0 and refusal in removed.stderr
    assert get_session(api, namespace, "s4")["spec"]["credential"] is True
    patch_session(api, namespace, "s4", {"checkin": {"skipReview": True}})
    wait_phase(api, namespace, "s4", "Ended", timeout=60)
    patch_session(api, namespace, "s4", {"credential": False})  # ended: allowed


def test_a_foreign_object_of_the_credential_name_stalls_and_is_left_alone(
    operator, api, namespace, repo
):
    create_project_pod(api, namespace, "shop", repo)
    core = client.CoreV1Api(api)
    name = names.credential_name("s5")
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": name}, "stringData": {"mine": "keep"}}
    )
    create_session(
        api, namespace, session_manifest("s5", "shop", newBranch="topic/taken", credential=True)
    )
    s = wait_condition(api, namespace, "s5", "Stalled", timeout=90)
    stalled = next(c for c in s["status"]["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "CredentialNameTaken"
    assert f"Secret {name} exists and is not owned by this Session" in stalled["message"]
    delete_session(api, namespace, "s5")
    wait_for(lambda: session_gone(api, namespace, "s5"), timeout=60, what="Session gone")
    kept = core.read_namespaced_secret(name, namespace)
    assert base64.b64decode(kept.data["mine"]) == b"keep"
    assert not kept.metadata.owner_references


def test_plugin_credential_writes_the_kubeconfig_0600(
    operator, api, kubeconfig, namespace, repo, tmp_path
):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s6", "shop", newBranch="topic/plug"))
    wait_condition(api, namespace, "s6", "Ready", timeout=90)
    out = plugin(kubeconfig, "credential", "s6", "-n", namespace)
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0
    assert "has no credential" in out.stderr and '"credential":true' in out.stderr

    patch_session(api, namespace, "s6", {"credential": True})
    active_with_credential(api, namespace, "s6")
    printed = plugin(kubeconfig, "credential", "s6", "-n", namespace)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == read_kubeconfig(api, namespace, names.credential_name("s6"))

    target = tmp_path / "out" / "s6.kubeconfig"
    target.parent.mkdir()
    old_umask = os.umask(0)  # the file must be 0600 whatever the umask
    try:
        wrote = plugin(kubeconfig, "credential", "s6", "-n", namespace, "-o", str(target))
    finally:
        os.umask(old_umask)
    assert wrote.returncode == 0, wrote.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text() == printed.stdout
    assert str(target) in wrote.stdout
    # Written again (a renewed token): still 0600, replaced whole.
    target.chmod(0o644)
    again = plugin(kubeconfig, "credential", "s6", "-n", namespace, "-o", str(target))
    assert again.returncode == 0, again.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    cred = credential_client(target.read_text(), tmp_path / "copy")
    assert get_as(cred, namespace, "s6")["metadata"]["name"] == "s6"

    missing = plugin(kubeconfig, "credential", "nope", "-n", namespace)
    assert missing.returncode == 1 and "not found" in missing.stderr

    # Asked for, not issued yet (no pod for the project): one line saying so.
    create_session(
        api, namespace, session_manifest("waits", "nopod", newBranch="t/w", credential=True)
    )
    wait_for(
        lambda: (get_session(api, namespace, "waits").get("status") or {}).get("phase"),
        what="a phase",
    )
    early = plugin(kubeconfig, "credential", "waits", "-n", namespace)
    assert early.returncode == 1 and early.stderr.count("\n") == 1, early.stderr
    assert "the credential of session waits is not ready yet (phase Pending)" in early.stderr
    # Ended: revoked, and said so.
    patch_session(api, namespace, "s6", {"checkin": {"skipReview": True}})
    wait_phase(api, namespace, "s6", "Ended", timeout=60)
    ended = plugin(kubeconfig, "credential", "s6", "-n", namespace)
    assert ended.returncode == 1 and ended.stderr.count("\n") == 1, ended.stderr
    assert "session s6 has ended (Ended); its credential was revoked" in ended.stderr


def test_credential_revoked_at_idle_stop(operator, api, namespace, repo, tmp_path):
    create_project_pod(api, namespace, "shop", repo)
    create_session(
        api,
        namespace,
        session_manifest("s7", "shop", newBranch="topic/idle", idleTimeout="10s", credential=True),
    )
    active_with_credential(api, namespace, "s7")
    cred = credential_client(
        read_kubeconfig(api, namespace, names.credential_name("s7")), tmp_path / "c"
    )
    assert get_as(cred, namespace, "s7")
    s = wait_phase(api, namespace, "s7", "Expired", timeout=90)
    reasons = {c["type"]: c["reason"] for c in s["status"]["conditions"]}
    assert reasons["Reconciling"] == "IdleTimeout"
    assert revoked_within(cred, namespace, "s7") < REVOKED_WITHIN_S
    wait_for(lambda: all_gone(api, namespace, "s7"), timeout=30, what="credential objects gone")


def test_force_deleted_session_loses_its_credential_through_its_owner_references(
    operator, api, namespace, repo, tmp_path
):
    """With the operator down and the finalizer removed by hand, nothing runs the end: the
    garbage collector deletes the four objects the Session owns, the Secret with the token."""
    create_project_pod(api, namespace, "shop", repo)
    create_session(
        api, namespace, session_manifest("s8", "shop", newBranch="topic/force", credential=True)
    )
    active_with_credential(api, namespace, "s8")
    cred = credential_client(
        read_kubeconfig(api, namespace, names.credential_name("s8")), tmp_path / "c"
    )
    assert get_as(cred, namespace, "s8")
    operator.stop()
    delete_session(api, namespace, "s8")
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "s8", {"metadata": {"finalizers": None}}
    )
    wait_for(lambda: session_gone(api, namespace, "s8"), timeout=30, what="Session gone")
    wait_for(lambda: all_gone(api, namespace, "s8"), timeout=60, what="credential objects gone")
    assert revoked_within(cred, namespace, "s8") < REVOKED_WITHIN_S


def test_a_restart_makes_a_deleted_service_account_again_with_a_new_token(
    operator_factory, api, namespace, repo, tmp_path
):
    """A token names its ServiceAccount's UID: a new account needs a new token, in the same
    Secret (the Role, RoleBinding and Secret are taken over, not made again)."""
    first = operator_factory()
    create_project_pod(api, namespace, "shop", repo)
    create_session(
        api, namespace, session_manifest("s9", "shop", newBranch="topic/sa", credential=True)
    )
    active_with_credential(api, namespace, "s9")
    name = names.credential_name("s9")
    before = credential_objects(api, namespace, "s9")
    old_text = read_kubeconfig(api, namespace, name)
    old = credential_client(old_text, tmp_path / "old")
    first.stop()
    client.CoreV1Api(api).delete_namespaced_service_account(name, namespace)
    operator_factory()

    def new_account() -> Any:
        found = credential_objects(api, namespace, "s9")["ServiceAccount"]
        was = before["ServiceAccount"][0].metadata.uid
        return found if found and found[0].metadata.uid != was else None

    wait_for(new_account, timeout=60, what="the ServiceAccount made again")
    wait_for(
        lambda: read_kubeconfig(api, namespace, name) != old_text,
        timeout=30,
        what="a new token in the Secret",
    )
    new = credential_client(read_kubeconfig(api, namespace, name), tmp_path / "new")
    assert get_as(new, namespace, "s9")["metadata"]["name"] == "s9"
    assert status_of(lambda: get_as(old, namespace, "s9")) == 401
    after = credential_objects(api, namespace, "s9")
    for kind in ("Secret", "Role", "RoleBinding"):
        assert [o.metadata.uid for o in after[kind]] == [before[kind][0].metadata.uid], kind


def admin_cluster(kubeconfig: str) -> dict[str, Any]:
    admin = yaml.safe_load(Path(kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    return dict(
        next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])["cluster"]
    )


@pytest.mark.parametrize("server", ["", "https://k8s.example.test:6443"])
def test_credential_names_the_server_and_the_ca_the_operator_trusts(
    operator_factory, api, kubeconfig, namespace, repo, server
):
    """RDEV_CREDENTIAL_SERVER, else the address the operator talks to; the operator's CA."""
    operator_factory(**({"RDEV_CREDENTIAL_SERVER": server} if server else {}))
    create_project_pod(api, namespace, "shop", repo)
    create_session(
        api, namespace, session_manifest("s10", "shop", newBranch="t/srv", credential=True)
    )
    active_with_credential(api, namespace, "s10")
    doc = yaml.safe_load(read_kubeconfig(api, namespace, names.credential_name("s10")))
    (cluster,) = doc["clusters"]
    admin = admin_cluster(kubeconfig)
    assert cluster["cluster"] == {
        "server": server or admin["server"],
        "certificate-authority-data": admin["certificate-authority-data"],
    }


def test_credential_objects_deleted_by_hand_come_back(operator_factory, api, namespace, repo):
    """Checked again every RDEV_CHANGES_INTERVAL: the Role and the ServiceAccount are made
    again, the account with a new token in the same Secret."""
    operator_factory(RDEV_CHANGES_INTERVAL="2s")
    create_project_pod(api, namespace, "shop", repo)
    create_session(
        api, namespace, session_manifest("s11", "shop", newBranch="t/drift", credential=True)
    )
    active_with_credential(api, namespace, "s11")
    name = names.credential_name("s11")
    before = credential_objects(api, namespace, "s11")
    old_text = read_kubeconfig(api, namespace, name)
    client.RbacAuthorizationV1Api(api).delete_namespaced_role(name, namespace)
    client.CoreV1Api(api).delete_namespaced_service_account(name, namespace)

    def remade() -> dict[str, list[Any]] | None:
        now = credential_objects(api, namespace, "s11")
        if {k: len(v) for k, v in now.items()} != dict.fromkeys(now, 1):
            return None
        return now

    after = wait_for(remade, timeout=30, what="the Role and ServiceAccount made again")
    for kind in ("Role", "ServiceAccount"):
        assert after[kind][0].metadata.uid != before[kind][0].metadata.uid
    assert after["Secret"][0].metadata.uid == before["Secret"][0].metadata.uid
    text = wait_for(
        lambda: (t := read_kubeconfig(api, namespace, name)) != old_text and t,
        timeout=30,
        what="a new token",
    )
    cred = config.new_client_from_config_dict(yaml.safe_load(text))
    assert get_as(cred, namespace, "s11")["metadata"]["name"] == "s11"
