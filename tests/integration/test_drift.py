"""The API server (the CRD) and the operator (SessionSpec) accept exactly the same specs.

Hypothesis generates specs, valid and invalid, and each is sent to the real API
server as a server-side dry-run create and to ``SessionSpec.model_validate``.
Any disagreement is a drift bug between models.py/refnames.py/durations.py and
the CRD that crd.py renders from them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from kubehelpers import GROUP, PLURAL, VERSION
from rdev_api.models import SessionSpec
from strategies import expires, ref_names, specs

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


def server_accepts(api: client.ApiClient, namespace: str, spec: dict[str, Any]) -> tuple[bool, str]:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Session",
        "metadata": {"name": "drift", "namespace": namespace},
        "spec": spec,
    }
    try:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body, dry_run="All", field_validation="Strict"
        )
    except ApiException as exc:
        assert exc.status == 422, f"unexpected {exc.status}: {exc.body}"
        return False, str(json.loads(exc.body).get("message"))
    return True, ""


def model_accepts(spec: dict[str, Any]) -> tuple[bool, str]:
    try:
        SessionSpec.model_validate(spec)
    except ValidationError as exc:  # anything else is a bug in the model itself
        return False, str(exc)
    return True, ""


def check(api: client.ApiClient, namespace: str, spec: dict[str, Any]) -> None:
    server, why_server = server_accepts(api, namespace, spec)
    model, why_model = model_accepts(spec)
    assert server == model, (
        f"drift on {spec!r}: API server {'accepts' if server else 'refuses'}"
        f" ({why_server}), SessionSpec {'accepts' if model else 'refuses'} ({why_model})"
    )


@SETTINGS
@given(spec=specs())
@example(spec={"project": "shop", "branch": "a", "expiresIn": "720.0000000001h"})
@example(spec={"project": "shop", "branch": "a", "expiresIn": "719h60m0.0000001s"})
@example(spec={"project": "shop", "branch": "a", "expiresIn": "0.0000001s"})
@example(spec={"project": "shop", "branch": "a", "expiresIn": "99999999999999h"})
@example(spec={"project": "shop", "branch": "a", "expiresIn": "9999999999999999999999d"})
@example(spec={"project": "shop", "branch": "a;b", "previewPort": 65535})
def test_server_and_model_agree_on_whole_specs(api, namespace, spec: dict[str, Any]) -> None:
    check(api, namespace, spec)


@settings(SETTINGS, max_examples=200)
@given(text=expires)
def test_server_and_model_agree_on_expires_in(api, namespace, text: str) -> None:
    check(api, namespace, {"project": "shop", "branch": "a", "expiresIn": text})


@settings(SETTINGS, max_examples=200)
@given(name=ref_names, field=st.sampled_from(["branch", "newBranch", "fromRef"]))
def test_server_and_model_agree_on_ref_names(api, namespace, name: str, field: str) -> None:
    spec: dict[str, Any] = {"project": "shop", field: name}
    if field == "fromRef":
        spec["newBranch"] = "topic/x"
    check(api, namespace, spec)


@pytest.mark.parametrize(
    "spec",
    [
        {"project": "shop", "branch": "a", "bogus": 1},
        {"project": "shop", "branch": "a", "checkin": {"force": True}},
    ],
)
def test_unknown_fields_refused_by_both_in_strict_mode(api, namespace, spec) -> None:
    custom = client.CustomObjectsApi(api)
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Session",
        "metadata": {"name": "drift", "namespace": namespace},
        "spec": spec,
    }
    with pytest.raises(ApiException) as info:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body, dry_run="All", field_validation="Strict"
        )
    assert "unknown field" in str(info.value.body)
    assert not model_accepts(spec)[0]
