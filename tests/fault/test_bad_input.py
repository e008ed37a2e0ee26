"""Thousands of generated specs: the CRD refuses the bad ones with a message, and every
accepted one is reconciled by the operator without a traceback or a shell."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubehelpers import (
    GROUP,
    PLURAL,
    VERSION,
    condition,
    create_project_pod,
    get_session,
    wait_for,
)
from strategies import specs

pytestmark = pytest.mark.fault

MANY = settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
FEW = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def _create(api, namespace: str, spec: dict[str, Any], *, dry: bool) -> tuple[bool, str]:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Session",
        "metadata": {"name": f"g{uuid.uuid4().hex[:10]}", "namespace": namespace},
        "spec": spec,
    }
    try:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body, dry_run="All" if dry else None
        )
    except ApiException as exc:
        assert exc.status == 422, f"unexpected {exc.status}: {exc.body}"
        return False, str(json.loads(exc.body).get("message") or "")
    return True, body["metadata"]["name"]


def test_every_rejected_spec_has_a_message(api, namespace):
    @MANY
    @given(spec=specs())
    def check(spec: dict[str, Any]) -> None:
        accepted, message = _create(api, namespace, spec, dry=True)
        if not accepted:
            assert message.strip(), f"rejected without a message: {spec!r}"

    check()


def test_accepted_specs_are_reconciled_without_traceback(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo, name="shop")
    created: list[str] = []

    @FEW
    @given(spec=specs())
    def make(spec: dict[str, Any]) -> None:
        spec = {**spec, "project": "shop"}
        spec.pop("checkin", None)
        accepted, name = _create(api, namespace, spec, dry=False)
        if accepted:
            created.append(name)

    make()
    assert created, "the generator produced no valid spec"

    def all_reported() -> bool:
        # Reconciling is written in every mode (an ended Session has no Ready).
        return all(condition(get_session(api, namespace, n), "Reconciling") for n in created)

    wait_for(all_reported, timeout=180, interval=0.5, what="a summary condition on every Session")
    logs = operator.logs()
    assert "Traceback" not in logs, logs[-5000:]
    for folder in (repo["repo"], repo["sessions"], Path.cwd()):
        assert not list(folder.glob("PWNED*"))
