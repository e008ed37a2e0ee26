"""API Priority and Fairness: the operator's requests run in a priority level of their own.

manifests/base/flowcontrol.yaml is applied with its subject moved to a
ServiceAccount of the test's namespace; the operator runs with that account's
token, and the API server's own metrics and response headers show where its
requests went. Cluster-scoped objects are removed (or the installed ones put back).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from conftest import OperatorProcess
from kubehelpers import (
    ROOT,
    create_project_pod,
    create_session,
    kubectl,
    session_manifest,
    wait_condition,
    wait_for,
)

BASE = ROOT / "manifests" / "base"
FLOWCONTROL = BASE / "flowcontrol.yaml"
RBAC = BASE / "rbac.yaml"
NAMESPACE_READER = ROOT / "manifests" / "overlays" / "single-namespace" / "namespace-reader.yaml"
SA_NAME = "rdev-session-operator"
LEVEL = SCHEMA = "rdev-operator"
FIELD_MANAGER = "rdev-test-flowcontrol"
SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def apply(kubeconfig: str, objects: list[dict[str, Any]]) -> None:
    kubectl(
        kubeconfig,
        "apply",
        "--server-side",
        "--force-conflicts",
        f"--field-manager={FIELD_MANAGER}",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(objects),
    )


def series(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if not m or m["name"] != name:
            continue
        got = dict(LABEL.findall(m["labels"] or ""))
        if labels.items() <= got.items():
            total += float(m["value"])
    return total


def apiserver_metrics(api: client.ApiClient) -> str:
    request = api.param_serialize(
        method="GET", resource_path="/metrics", auth_settings=["BearerToken"]
    )
    resp = api.call_api(*request, _request_timeout=30)
    resp.read()
    assert resp.status == 200, resp.status
    return bytes(resp.data).decode()


def dispatched(api: client.ApiClient) -> float:
    return series(
        apiserver_metrics(api),
        "apiserver_flowcontrol_dispatched_requests_total",
        flow_schema=SCHEMA,
        priority_level=LEVEL,
    )


def token_kubeconfig(
    api: client.ApiClient, admin_kubeconfig: str, namespace: str, sa: str, path: Path
) -> str:
    """A kubeconfig holding a TokenRequest token (``kubectl create token``) of ``sa``."""
    token = client.CoreV1Api(api).create_namespaced_service_account_token(
        sa, namespace, {"spec": {"expirationSeconds": 3600}}
    )
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    server = dict(cluster["cluster"])
    if "certificate-authority" in server:  # inline it: the file may be relative to the original
        ca = Path(server.pop("certificate-authority"))
        if not ca.is_absolute():
            ca = Path(admin_kubeconfig).parent / ca
        server["certificate-authority-data"] = base64.b64encode(ca.read_bytes()).decode()
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "rdev", "cluster": server}],
                "users": [{"name": sa, "user": {"token": token.status.token}}],
                "contexts": [{"name": sa, "context": {"cluster": "rdev", "user": sa}}],
                "current-context": sa,
            }
        )
    )
    path.chmod(0o600)
    return str(path)


def client_for(kubeconfig: str) -> client.ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    return client.ApiClient(cfg)


def pf_headers(api: client.ApiClient, namespace: str) -> list[tuple[str, str]]:
    """The (FlowSchema UID, PriorityLevel UID) APF stamped on a resource and a non-resource call."""
    _, _, listed = client.CoreV1Api(api).list_namespaced_service_with_http_info(namespace)
    _, _, version = client.VersionApi(api).get_code_with_http_info()
    return [
        (
            h.get("X-Kubernetes-PF-FlowSchema-UID", ""),
            h.get("X-Kubernetes-PF-PriorityLevel-UID", ""),
        )
        for h in (listed, version)
    ]


@pytest.fixture
def flowcontrol(api: client.ApiClient, kubeconfig: str, namespace: str) -> Iterator[dict[str, Any]]:
    """The manifest's FlowSchema and level, matching ``<namespace>/rdev-session-operator``,
    and that account bound to the operator's ClusterRole (a copy named after the namespace)."""
    objects = docs(FLOWCONTROL)
    schema = one(objects, "FlowSchema")
    for rule in schema["spec"]["rules"]:
        for subject in rule["subjects"]:
            if subject["kind"] == "ServiceAccount":
                assert subject["serviceAccount"] == {"name": SA_NAME, "namespace": "rdev-system"}
                subject["serviceAccount"]["namespace"] = namespace

    # The operator's rules (rbac.yaml) plus reading Namespaces, as the
    # single-namespace overlay grants them, under names of this test's own.
    rbac: list[dict[str, Any]] = []
    for source in [d for d in docs(RBAC) + docs(NAMESPACE_READER) if d["kind"] == "ClusterRole"]:
        name = f"{source['metadata']['name']}-{namespace}"
        rbac.append({**source, "metadata": {"name": name}})
        rbac.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": name,
                },
                "subjects": [{"kind": "ServiceAccount", "name": SA_NAME, "namespace": namespace}],
            }
        )

    flow = client.FlowcontrolApiserverV1Api(api)
    try:
        flow.read_flow_schema(SCHEMA)
        installed = True  # `kubectl apply -k manifests/` ran on this cluster: put it back after
    except ApiException as exc:
        assert exc.status == 404, exc
        installed = False
    client.CoreV1Api(api).create_namespaced_service_account(
        namespace, {"metadata": {"name": SA_NAME}}
    )
    try:
        apply(kubeconfig, [*rbac, *objects])
        yield schema
    finally:
        for obj in reversed(rbac):
            kubectl(
                kubeconfig, "delete", obj["kind"], obj["metadata"]["name"], "--ignore-not-found"
            )
        if installed:
            apply(kubeconfig, docs(FLOWCONTROL))
        else:
            for obj in objects:
                kubectl(
                    kubeconfig, "delete", obj["kind"], obj["metadata"]["name"], "--ignore-not-found"
                )


def test_manifest_places_the_operator_between_system_and_workload_flows(api):
    """Lower precedence numbers match first: after every system flow, before service-accounts."""
    objects = docs(FLOWCONTROL)
    schema, level = one(objects, "FlowSchema"), one(objects, "PriorityLevelConfiguration")
    assert (
        schema["spec"]["priorityLevelConfiguration"]["name"] == level["metadata"]["name"] == LEVEL
    )
    assert schema["spec"]["distinguisherMethod"] == {"type": "ByUser"}
    assert level["spec"]["type"] == "Limited"
    queuing = level["spec"]["limited"]["limitResponse"]["queuing"]
    assert queuing["handSize"] <= queuing["queues"]

    # The API server's own schemas: those feeding the shared workload levels match after
    # ours, every system one (exempt, probes, leader election, nodes, controllers) before.
    ours = schema["spec"]["matchingPrecedence"]
    shared = {"workload-low", "global-default", "catch-all"}
    defaults = [
        fs
        for fs in client.FlowcontrolApiserverV1Api(api).list_flow_schema().items
        if fs.metadata.name != SCHEMA
    ]
    after = {
        fs.metadata.name for fs in defaults if fs.spec.priority_level_configuration.name in shared
    }
    assert {"service-accounts", "global-default", "catch-all"} <= after
    for fs in defaults:
        if fs.metadata.name in after:
            assert fs.spec.matching_precedence > ours, fs.metadata.name
        else:
            assert fs.spec.matching_precedence < ours, fs.metadata.name


def test_operator_requests_are_dispatched_in_its_priority_level(
    api, kubeconfig, namespace, repo, tmp_path, flowcontrol
):
    flow = client.FlowcontrolApiserverV1Api(api)
    schema_uid = flow.read_flow_schema(SCHEMA).metadata.uid
    level_uid = flow.read_priority_level_configuration(LEVEL).metadata.uid

    def dangling_false() -> bool:
        conditions = flow.read_flow_schema_status(SCHEMA).status.conditions or []
        return any(c.type == "Dangling" and c.status == "False" for c in conditions)

    wait_for(dangling_false, timeout=30, what="FlowSchema points at an existing level")

    sa_config = token_kubeconfig(api, kubeconfig, namespace, SA_NAME, tmp_path / "sa.kubeconfig")
    sa_api = client_for(sa_config)
    # The API server's flow-control configuration follows its own watch: bounded wait.
    wait_for(
        lambda: pf_headers(sa_api, namespace) == [(schema_uid, level_uid)] * 2,
        timeout=30,
        what="requests of the ServiceAccount classified into rdev-operator",
    )
    # The control: another identity of the same namespace is not caught by the schema.
    other = client_for(
        token_kubeconfig(api, kubeconfig, namespace, "default", tmp_path / "default.kubeconfig")
    )
    _, _, headers = client.VersionApi(other).get_code_with_http_info()
    assert headers.get("X-Kubernetes-PF-FlowSchema-UID") not in (None, schema_uid)
    assert headers.get("X-Kubernetes-PF-PriorityLevel-UID") != level_uid

    text = apiserver_metrics(api)
    seats = series(text, "apiserver_flowcontrol_nominal_limit_seats", priority_level=LEVEL)
    assert seats > 0, "the API server gave the level no seats"
    before = dispatched(api)

    operator = OperatorProcess(sa_config, namespace, tmp_path / "operator.log")
    try:
        operator.start()
        create_project_pod(api, namespace, "shop", repo)
        create_session(api, namespace, session_manifest("fc1", "shop", newBranch="topic/fc"))
        wait_condition(api, namespace, "fc1", "Ready", timeout=90)
        # Listing, watching, the finalizer, the Service, the pod label, Events, the status.
        wait_for(
            lambda: dispatched(api) - before >= 8,
            timeout=30,
            what="the operator's requests counted in rdev-operator",
        )
    finally:
        operator.stop()

    after = apiserver_metrics(api)
    rose = dispatched(api) - before
    rejected = series(after, "apiserver_flowcontrol_rejected_requests_total", flow_schema=SCHEMA)
    print(f"\nrdev-operator: {seats:g} nominal seats, {rose:g} dispatched, {rejected:g} rejected")
    assert rejected == 0
    forbidden = [
        ln for ln in operator.logs().splitlines() if re.search(r"\(403\)|forbidden", ln, re.I)
    ]
    assert not forbidden, "\n".join(forbidden[:20])
