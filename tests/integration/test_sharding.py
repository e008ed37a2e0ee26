"""Shards by namespace on the real API server (ShardedListAndWatch, enabled by
hack/controlplane.sh): the server hashes as the operator does, two shards split the
Sessions of many namespaces, a shard fails over to its standby, and a sharded replica
refuses a server that ignores the selector.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from test_access import operator_kubeconfig

from conftest import OperatorProcess, own_control_plane
from kubectl_session import render
from kubehelpers import (
    ROOT,
    create_project_pod,
    create_session,
    events_for,
    get_session,
    kubectl,
    ok,
    plugin,
    scratch_namespace,
    session_manifest,
    wait_condition,
    wait_for,
)
from rdev_api import GROUP, PLURAL, VERSION, shards
from rdev_api.names import MANAGER

PEERING_CRDS = ROOT / "manifests" / "base" / "kopf-peering-crds.yaml"
SHARDS = 2
LIFETIME_S = 15


def listed(kubeconfig: str, path: str, selector: str) -> list[dict[str, Any]]:
    """The items of a LIST with ``shardSelector``."""
    query = urllib.parse.urlencode({"shardSelector": selector})
    return list(json.loads(kubectl(kubeconfig, "get", "--raw", f"{path}?{query}"))["items"])


def namespaces_of(items: list[dict[str, Any]]) -> set[str]:
    return {item["metadata"]["namespace"] for item in items}


def test_the_api_server_hashes_namespaces_as_the_operator_does(api, kubeconfig, namespace):
    core = client.CoreV1Api(api)
    with scratch_namespace(api) as other:
        for ns in (namespace, other):
            core.create_namespaced_config_map(ns, {"metadata": {"name": "probe"}})
            create_session(api, ns, session_manifest("probe", "shop", newBranch="probe/x"))
        for ns in (namespace, other):
            # A range one hash wide: exactly the namespace whose FNV-1a hash it is.
            value = shards.fnv1a64(ns)
            one = shards.selector(value, value + 1)
            found = listed(kubeconfig, "/api/v1/configmaps", one)
            assert namespaces_of(found) == {ns}
            assert "probe" in {item["metadata"]["name"] for item in found}
            sessions = listed(kubeconfig, f"/apis/{GROUP}/{VERSION}/{PLURAL}", one)
            assert [(s["metadata"]["namespace"], s["metadata"]["name"]) for s in sessions] == [
                (ns, "probe")
            ]
        # Two shards: each namespace's Session in its own shard's LIST, and in no other.
        for index in range(SHARDS):
            got = namespaces_of(
                listed(
                    kubeconfig,
                    f"/apis/{GROUP}/{VERSION}/{PLURAL}",
                    shards.shard_selector(index, SHARDS),
                )
            )
            for ns in (namespace, other):
                assert (ns in got) == (shards.shard_of(ns, SHARDS) == index)


def test_the_api_server_puts_ns_a_at_its_known_hash(api, kubeconfig):
    """``ns-a`` hashes to 0x4a8287ba48e20b30 (tests/unit/test_shards.py): so says the server."""
    core = client.CoreV1Api(api)

    def ready() -> bool:
        """ns-a exists and is not on its way out (a run before may have just deleted it)."""
        try:
            return core.read_namespace("ns-a").status.phase == "Active"
        except ApiException as exc:
            if exc.status != 404:
                raise
        try:
            core.create_namespace({"metadata": {"name": "ns-a"}})
        except ApiException as exc:
            if exc.status != 409:
                raise
        return False

    made = not ready()
    wait_for(ready, timeout=60, what="namespace ns-a")
    try:
        value = 0x4A8287BA48E20B30
        # The controller-manager makes its default ServiceAccount: wait for it, bounded.
        wait_for(
            lambda: (
                "ns-a"
                in namespaces_of(
                    listed(kubeconfig, "/api/v1/serviceaccounts", shards.selector(value, value + 1))
                )
            ),
            timeout=60,
            what="ns-a's ServiceAccount in the range of its hash",
        )
        found = namespaces_of(
            listed(kubeconfig, "/api/v1/serviceaccounts", shards.selector(value, value + 1))
        )
        assert found == {"ns-a"}
        beside = shards.selector(value + 1, value + 2)
        assert "ns-a" not in namespaces_of(listed(kubeconfig, "/api/v1/serviceaccounts", beside))
    finally:
        if made:
            core.delete_namespace("ns-a")


@contextlib.contextmanager
def peerings(api: client.ApiClient, kubeconfig: str, names: list[str]) -> Iterator[None]:
    """kopf's peering CRDs (idempotent) and ClusterKopfPeerings of this test's own."""
    kubectl(kubeconfig, "apply", "--server-side", "-f", str(PEERING_CRDS))
    kubectl(kubeconfig, "wait", "--for=condition=Established", "crd/clusterkopfpeerings.kopf.dev")
    custom = client.CustomObjectsApi(api)
    for name in names:
        custom.create_cluster_custom_object(
            "kopf.dev",
            "v1",
            "clusterkopfpeerings",
            {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": name}},
        )
    try:
        yield
    finally:
        for name in names:
            with contextlib.suppress(ApiException):
                custom.delete_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", name)


def acting(op: OperatorProcess) -> float:
    """The replica's rdev_active gauge (1: it acts on its shard)."""
    for line in op.metrics().splitlines():
        if line.startswith("rdev_active{"):
            return float(line.split()[1])
    raise AssertionError("rdev_active not exported")


def held(op: OperatorProcess) -> float:
    """How many Sessions the replica holds (rdev_sessions over all phases)."""
    return sum(
        float(line.split()[1])
        for line in op.metrics().splitlines()
        if line.startswith("rdev_sessions{")
    )


def received(op: OperatorProcess, kind: str) -> dict[str, float]:
    """Watch events of one kind the replica received (rdev_watch_events_total), by shard."""
    found: dict[str, float] = {}
    for line in op.metrics().splitlines():
        if line.startswith(f'rdev_watch_events_total{{kind="{kind}",'):
            shard = line.split('shard="', 1)[1].split('"', 1)[0]
            found[shard] = float(line.split()[1])
    return found


def reporters(api: client.ApiClient, namespace: str, session: str) -> set[str]:
    return {
        e.reporting_instance
        for e in events_for(api, namespace, session)
        if e.reporting_component == MANAGER
    }


def shard_managers(session: dict[str, Any]) -> dict[str, set[str]]:
    """The shards' user agents that wrote the Session, by subresource ("" for the object)."""
    found: dict[str, set[str]] = {}
    for entry in session["metadata"].get("managedFields") or []:
        if entry["manager"].startswith(f"{MANAGER}-shard-"):
            found.setdefault(entry.get("subresource", ""), set()).add(entry["manager"])
    return found


def test_two_shards_each_handle_exactly_the_sessions_of_their_namespaces(
    api, kubeconfig, repo, operator_factory
):
    with contextlib.ExitStack() as stack:
        spaces = [stack.enter_context(scratch_namespace(api)) for _ in range(6)]
        while len({shards.shard_of(ns, SHARDS) for ns in spaces}) < SHARDS:
            spaces.append(stack.enter_context(scratch_namespace(api)))
        two_shards_split(api, kubeconfig, repo, operator_factory, stack, spaces, ())


def test_planned_boundaries_split_namespaces_numbered_after_one_prefix(
    api, kubeconfig, repo, operator_factory
):
    """Namespaces named ``<prefix>-0…5`` hash close together (FNV-1a's last bytes move the
    low bits): equal slices give them all to one shard. ``kubectl session shards`` plans
    boundaries between them, and the shards then split them three and three."""
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    with contextlib.ExitStack() as stack:
        spaces = [stack.enter_context(scratch_namespace(api, f"{prefix}-{i}")) for i in range(6)]
        assert len({shards.shard_of(ns, SHARDS) for ns in spaces}) == 1
        for i, ns in enumerate(spaces):
            create_session(api, ns, session_manifest(f"w{i}", "none", newBranch=f"w/{i}"))
        # The plugin counts every Session in the cluster, page by page, as the API lists
        # them. Other tests' namespaces may still be going: compare while nothing moves.
        custom = client.CustomObjectsApi(api)

        def per_namespace() -> dict[str, int]:
            items = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]
            return dict(Counter(item["metadata"]["namespace"] for item in items))

        def agreed() -> tuple[dict[str, int], dict[str, Any], str] | None:
            before = per_namespace()
            done = plugin(kubeconfig, "shards", "--shards", str(SHARDS), "-o", "json")
            shown = json.loads(ok(done))
            text = ok(plugin(kubeconfig, "shards", "--shards", str(SHARDS)))
            return (before, shown, text) if per_namespace() == before else None

        counts, shown, text = wait_for(
            agreed, timeout=60, what="the cluster's Sessions to hold still"
        )
        assert all(counts.get(ns) == 1 for ns in spaces)
        assert shown == render.shard_plan(counts, SHARDS, ())
        assert all(row["namespaces"] > 0 for row in shown["planned"])
        assert f"RDEV_SHARD_BOUNDARIES={shown['boundaries']}" in text
        # Planned over these six alone (the cluster holds other tests' Sessions too).
        cuts = shards.plan(dict.fromkeys(spaces, 1), SHARDS)
        assert [n for n, _ in shards.tally(dict.fromkeys(spaces, 1), SHARDS, cuts)] == [3, 3]
        two_shards_split(api, kubeconfig, repo, operator_factory, stack, spaces, cuts)


def two_shards_split(
    api: client.ApiClient,
    kubeconfig: str,
    repo: Any,
    operator_factory: Any,
    stack: contextlib.ExitStack,
    spaces: list[str],
    cuts: tuple[int, ...],
) -> None:
    """Two shards over ``spaces`` (cut at ``cuts``; empty: equal slices): each Session is
    written, evented and held by its namespace's shard only."""
    base = f"rdev-shards-{spaces[0]}"
    names = [shards.peering_name(base, i, SHARDS) for i in range(SHARDS)]
    stack.enter_context(peerings(api, kubeconfig, names))
    # Both serve all the test's namespaces (and nothing else on the cluster, as every
    # test's operators); the shard comes from the pod name's ordinal.
    ops = [
        operator_factory(
            RDEV_NAMESPACES=",".join(spaces),
            RDEV_SHARDS=str(SHARDS),
            RDEV_SHARD_BOUNDARIES=shards.format_cuts(cuts),
            RDEV_PEERING=base,
            RDEV_PEERING_LIFETIME=f"{LIFETIME_S}s",
            POD_NAME=f"rdev-op-{i}",
            POD_ID=f"rdev-op-{i}",
        )
        for i in range(SHARDS)
    ]
    # Each shard elects its own leader: both act, neither pauses the other.
    wait_for(lambda: all(acting(op) == 1.0 for op in ops), timeout=60, what="both shards act")

    for i, ns in enumerate(spaces):
        create_project_pod(api, ns, f"p{i}", repo)
        create_session(api, ns, session_manifest(f"sh{i}", f"p{i}", newBranch=f"shard/{i}"))
    for i, ns in enumerate(spaces):
        wait_condition(api, ns, f"sh{i}", "Ready", timeout=90)

    expected = {index: 0 for index in range(SHARDS)}
    for i, ns in enumerate(spaces):
        index = shards.shard_of(ns, SHARDS, cuts)
        expected[index] += 1
        own = {shards.user_agent(index, SHARDS).split("/")[0]}
        # The status, and kopf's finalizer, written by this namespace's shard only.
        written = shard_managers(get_session(api, ns, f"sh{i}"))
        assert written.get("status") == own, (ns, written)
        assert written.get("") == own, (ns, written)
        # Events follow the status write: wait for them, bounded.
        wait_for(
            lambda ns=ns, i=i, index=index: reporters(api, ns, f"sh{i}") == {f"rdev-op-{index}"},
            timeout=30,
            what=f"sh{i} events from rdev-op-{index} only",
        )
    # Each replica lists and watches only its shard's namespaces: it holds only their
    # Sessions (those made before it too), and receives watch events for them, counted
    # under its shard's label only (every metric carries the shard).
    custom = client.CustomObjectsApi(api)
    present = Counter(
        shards.shard_of(ns, SHARDS, cuts)
        for ns in spaces
        for _ in custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
    )
    for index, op in enumerate(ops):
        assert held(op) == present[index], (index, present)
        events = received(op, "session")
        assert list(events) == [str(index)], events
        assert events[str(index)] >= expected[index] > 0
        exported = [line for line in op.metrics().splitlines() if line.startswith("rdev_")]
        assert exported and all(f'shard="{index}"' in line for line in exported)
    print(f"\nSessions per shard: {expected}", end=" ")


def test_a_shard_standby_takes_over_within_the_peering_lifetime(
    api, kubeconfig, namespace, repo, operator_factory
):
    index = shards.shard_of(namespace, SHARDS)
    base = f"rdev-failover-{namespace}"
    name = shards.peering_name(base, index, SHARDS)
    env = {
        "RDEV_SHARDS": str(SHARDS),
        "RDEV_SHARD": str(index),
        "RDEV_PEERING": base,
        "RDEV_PEERING_LIFETIME": f"{LIFETIME_S}s",
    }
    custom = client.CustomObjectsApi(api)

    def peers() -> set[str]:
        obj = custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", name)
        return set(obj.get("status") or {})

    with peerings(api, kubeconfig, [name]):
        leader = operator_factory(POD_NAME="op-a", POD_ID="op-a", **env)
        wait_for(lambda: acting(leader) == 1.0, timeout=60, what="the first replica to lead")
        # Priority comes from the start time in seconds: the older replica leads.
        started = int(time.time())
        wait_for(lambda: int(time.time()) > started, timeout=5, what="the next second")
        standby = operator_factory(POD_NAME="op-b", POD_ID="op-b", **env)
        wait_for(lambda: peers() == {"op-a", "op-b"}, timeout=60, what="both in the peering")
        assert acting(standby) == 0.0

        create_project_pod(api, namespace, "shop", repo)
        create_project_pod(api, namespace, "cafe", repo)
        create_session(api, namespace, session_manifest("f1", "shop", newBranch="failover/one"))
        wait_condition(api, namespace, "f1", "Ready", timeout=60)
        wait_for(lambda: reporters(api, namespace, "f1") == {"op-a"}, timeout=30, what="f1 events")

        leader.kill(signal.SIGKILL)
        killed_at = time.monotonic()
        limit = LIFETIME_S + 5
        wait_for(lambda: acting(standby) == 1.0, timeout=limit + 30, what="the standby to act")
        takeover = time.monotonic() - killed_at
        print(f"\nshard {index} failover: {takeover:.1f}s (lifetime {LIFETIME_S}s)", end=" ")
        assert takeover <= limit
        create_session(api, namespace, session_manifest("f2", "cafe", newBranch="failover/two"))
        wait_condition(api, namespace, "f2", "Ready", timeout=60)
        wait_for(lambda: reporters(api, namespace, "f2") == {"op-b"}, timeout=30, what="f2 events")


def run_sharded(kubeconfig: str) -> list[str]:
    """Start a replica of shard 0 of 2 that should refuse; the lines of its stderr."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("RDEV_")}
    env.update(
        KUBECONFIG=kubeconfig,
        RDEV_SHARDS=str(SHARDS),
        RDEV_SHARD="0",
        RDEV_METRICS_PORT="0",
        RDEV_HEALTH_PORT="0",
    )
    run = subprocess.run(
        [sys.executable, "-m", "session_operator"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert run.returncode == 3, run.stderr
    return [line for line in run.stderr.splitlines() if line.strip()]


def test_a_sharded_replica_refuses_a_server_that_ignores_the_selector(tmp_path: Path):
    """A control plane of its own without the gate (hack/controlplane.sh, about 3 s)."""
    with own_control_plane(tmp_path, RDEV_KUBE_FEATURE_GATES="") as (_, kubeconfig):
        # The server really ignores it: a range that leaves out ``default`` still lists it.
        value = shards.fnv1a64("default")
        outside = shards.selector(value + 1, shards.RING)
        services = listed(kubeconfig, "/api/v1/namespaces/default/services", outside)
        assert "kubernetes" in {s["metadata"]["name"] for s in services}
        (line,) = run_sharded(kubeconfig)
    assert "RDEV_SHARDS=2 but the API server ignores shardSelector" in line
    assert "ShardedListAndWatch" in line
    assert "RDEV_NAMESPACES" in line


def test_a_sharded_replica_refuses_when_it_cannot_make_the_check(
    api, kubeconfig, namespace, tmp_path
):
    """An identity that may not list Services in ``default`` cannot tell: it refuses too."""
    limited = operator_kubeconfig(api, kubeconfig, namespace, tmp_path / "kubeconfig")
    (line,) = run_sharded(limited)
    assert "could not list Service default/kubernetes: 403" in line


def test_a_sharded_replica_starts_where_the_server_honours_the_selector(operator_factory):
    """The same check passes on this control plane, which enables the gate."""
    op = operator_factory(RDEV_SHARDS=str(SHARDS), RDEV_SHARD="1")
    assert acting(op) == 1.0
    assert "shard=1/2" in op.logs()
