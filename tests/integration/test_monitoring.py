"""manifests/components/monitoring: builds into the install, is accepted by the
Prometheus Operator's CRD schemas, and names only series the operator exports.

The CRDs come from the prometheus-operator Go module (hack/monitoring-crds.sh,
pinned version, module cache) and are removed after the module unless they
were there before.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubehelpers import ROOT, kubectl, kustomize, wait_for

COMPONENT = ROOT / "manifests" / "components" / "monitoring"
CRDS_SCRIPT = ROOT / "hack" / "monitoring-crds.sh"
GROUP, VERSION = "monitoring.coreos.com", "v1"
PLURALS = {"ServiceMonitor": "servicemonitors", "PrometheusRule": "prometheusrules"}
FIELD_MANAGER = "rdev-test-monitoring"
METRIC = re.compile(r"\brdev_[a-zA-Z0-9_:]*")
SUFFIXES = {"_bucket": ("histogram",), "_sum": ("histogram", "summary")}
SUFFIXES["_count"] = SUFFIXES["_sum"]


@pytest.fixture(scope="module")
def monitoring_crds(api: client.ApiClient, kubeconfig: str) -> Iterator[list[str]]:
    """ServiceMonitor and PrometheusRule CRDs, established; removed after unless pre-existing."""
    # Downloads the module once (make setup does it beforehand), then reads the cache.
    paths = subprocess.run(
        ["bash", str(CRDS_SCRIPT), "paths", *PLURALS.values()],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout.split()
    names = [f"{plural}.{GROUP}" for plural in PLURALS.values()]
    ext = client.ApiextensionsV1Api(api)
    existed = set()
    for name in names:
        try:
            ext.read_custom_resource_definition(name)
            existed.add(name)
        except ApiException as exc:
            assert exc.status == 404, exc
    # Too large for the last-applied annotation of a client-side apply.
    files = [arg for path in paths for arg in ("-f", path)]
    kubectl(kubeconfig, "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", *files)
    kubectl(
        kubeconfig,
        "wait",
        "--for=condition=Established",
        *(f"crd/{n}" for n in names),
        "--timeout=60s",
        timeout=90,
    )
    yield paths
    for name in names:
        if name not in existed:
            kubectl(kubeconfig, "delete", "crd", name, "--ignore-not-found", "--wait=false")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The install with the component enabled, as manifests/kustomization.yaml's comment says."""
    where = tmp_path_factory.mktemp("with-monitoring")
    # kustomize accepts only relative paths to other kustomizations.
    (where / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(ROOT / "manifests", where)],
                "components": [os.path.relpath(COMPONENT, where)],
            }
        )
    )
    return kustomize(where)


def pick(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def monitoring_objects(built: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        pick(built, "ServiceMonitor"),
        pick(built, "PrometheusRule"),
        pick(built, "ConfigMap", "rdev-session-operator-dashboard"),
    ]


def dashboard(built: list[dict[str, Any]]) -> dict[str, Any]:
    data = pick(built, "ConfigMap", "rdev-session-operator-dashboard")["data"]
    (text,) = data.values()
    return dict(json.loads(text))


def expressions(built: list[dict[str, Any]]) -> dict[str, str]:
    """Every PromQL expression, named by where it is: alerts, panel targets, variables."""
    exprs: dict[str, str] = {}
    for group in pick(built, "PrometheusRule")["spec"]["groups"]:
        for rule in group["rules"]:
            exprs[f"rule {rule.get('alert') or rule.get('record')}"] = str(rule["expr"])
    dash = dashboard(built)
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            exprs[f"panel {panel['title']!r} {target['refId']}"] = target["expr"]
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]
            exprs[f"variable {var['name']}"] = query["query"] if isinstance(query, dict) else query
    return exprs


def exported(text: str) -> tuple[set[str], dict[str, str]]:
    """Sample names and family types of an exposition (families with no samples yet
    still have their # HELP and # TYPE lines)."""
    samples, types = set(), {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            types[name] = kind.strip()
        elif line and not line.startswith("#"):
            samples.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return samples, types


def is_exported(name: str, samples: set[str], types: dict[str, str]) -> bool:
    if name in samples or name in types:
        return True
    for suffix, kinds in SUFFIXES.items():
        if name.endswith(suffix) and types.get(name.removesuffix(suffix)) in kinds:
            return True
    return False


# The component builds ----------------------------------------------------------------------
def test_component_builds_into_the_install(built):
    service = pick(built, "Service", "rdev-session-operator-metrics")
    monitor = pick(built, "ServiceMonitor")
    rule = pick(built, "PrometheusRule")
    cm = pick(built, "ConfigMap", "rdev-session-operator-dashboard")
    ns = service["metadata"]["namespace"]
    assert {o["metadata"]["namespace"] for o in (monitor, rule, cm)} == {ns}

    # The ServiceMonitor selects the metrics Service by its labels and scrapes its port.
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert "metrics" in {p["name"] for p in service["spec"]["ports"]}
    assert monitor["spec"].get("namespaceSelector") in (None, {}, {"matchNames": [ns]})
    # Prometheus names the job after the Service: the `up` selectors must say so.
    for where, expr in expressions(built).items():
        for job in re.findall(r'\bup\{[^}]*job="([^"]+)"', expr):
            assert job == service["metadata"]["name"], where

    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dash = dashboard(built)
    assert dash["uid"] and dash["panels"]
    assert all(p.get("targets") for p in dash["panels"]), "a panel without a query"

    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {
        "RdevOperatorDown",
        "RdevOperatorNotActing",
        "RdevOperatorSplitBrain",
        "RdevReconcileErrors",
        "RdevSessionsStalled",
        "RdevExecFailures",
        "RdevWebUIRestarting",
        "RdevSessionsExpiringSoon",
    } <= alerts
    for group in rule["spec"]["groups"]:
        for r in group["rules"]:
            assert r["labels"]["severity"] in ("critical", "warning", "info"), r["alert"]
            assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]


def test_default_install_leaves_the_component_out():
    """Enabling needs the Prometheus Operator's CRDs: the plain install has none of its kinds."""
    out = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "manifests")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    kinds = {d["kind"] for d in yaml.safe_load_all(out) if d}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}


# The API server accepts it -------------------------------------------------------------------
def test_objects_are_created_under_the_crd_schemas(api, namespace, built, monitoring_crds):
    custom = client.CustomObjectsApi(api)
    core = client.CoreV1Api(api)
    for obj in monitoring_objects(built):
        body = json.loads(json.dumps(obj))
        body["metadata"]["namespace"] = namespace
        name = body["metadata"]["name"]
        if obj["kind"] == "ConfigMap":
            core.create_namespaced_config_map(namespace, body)
            assert core.read_namespaced_config_map(name, namespace).data == obj["data"]
            continue
        plural = PLURALS[obj["kind"]]
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
        stored = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        # Nothing was pruned: every field is one the schema knows.
        assert stored["spec"] == obj["spec"], obj["kind"]

    # The control: the schemas are enforced (a bad duration, an unknown endpoint field type).
    bad_rule = json.loads(json.dumps(pick(built, "PrometheusRule")))
    bad_rule["metadata"] = {"name": "bad-rule", "namespace": namespace}
    bad_rule["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    bad_monitor = json.loads(json.dumps(pick(built, "ServiceMonitor")))
    bad_monitor["metadata"] = {"name": "bad-monitor", "namespace": namespace}
    bad_monitor["spec"]["endpoints"][0]["interval"] = "often"
    for bad in (bad_rule, bad_monitor):
        with pytest.raises(ApiException) as refused:
            custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURALS[bad["kind"]], bad
            )
        assert refused.value.status == 422, refused.value.body


# Every series it names is exported ------------------------------------------------------------
def test_every_series_in_rules_and_dashboard_is_exported(built, operator):
    text = wait_for(operator.metrics, timeout=30, what="operator /metrics")
    samples, types = exported(text)
    used: dict[str, list[str]] = {}
    for where, expr in expressions(built).items():
        for name in METRIC.findall(expr):
            used.setdefault(name, []).append(where)
    # Not vacuous: every series of metrics.py is used somewhere ...
    assert {
        "rdev_sessions",
        "rdev_sessions_expiring_soon",
        "rdev_reconcile_total",
        "rdev_reconcile_duration_seconds_bucket",
        "rdev_exec_total",
        "rdev_exec_duration_seconds_bucket",
        "rdev_webui_restarts_total",
    } <= set(used), sorted(used)
    # ... and the check can fail: names the operator does not export are refused.
    for name in ("rdev_acting", "rdev_sessions_bucket", "rdev_reconcile_total_sum", "rdev_x"):
        assert not is_exported(name, samples, types), name

    missing = {n: w for n, w in used.items() if not is_exported(n, samples, types)}
    assert not missing, f"not exported by the operator: {missing}"
    print(f"\n{len(used)} series names, all exported: {', '.join(sorted(used))}")


def test_crd_script_pins_a_version():
    version = subprocess.run(
        ["bash", str(CRDS_SCRIPT), "version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    assert re.fullmatch(r"v\d+\.\d+\.\d+", version), version
    assert Path(CRDS_SCRIPT).read_text().count(version) == 1
