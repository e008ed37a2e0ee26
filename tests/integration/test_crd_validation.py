"""The API server itself refuses bad Sessions, with the CRD's readable messages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubehelpers import GROUP, PLURAL, VERSION, create_session, get_session, session_manifest


def refused(call: Any) -> str:
    """Run ``call``; it must fail with 422. Returns the server's message."""
    with pytest.raises(ApiException) as info:
        call()
    assert info.value.status == 422, info.value.body
    return str(json.loads(info.value.body)["message"])


def create_refused(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> str:
    return refused(lambda: create_session(api, namespace, body))


def patch_refused(api: client.ApiClient, namespace: str, name: str, spec: dict[str, Any]) -> str:
    custom = client.CustomObjectsApi(api)
    return refused(
        lambda: custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, {"spec": spec}
        )
    )


def patch(api: client.ApiClient, namespace: str, name: str, spec: dict[str, Any]) -> Any:
    return client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, {"spec": spec}
    )


ONE_BRANCH = "exactly one of branch or newBranch must be set"
SPACES = "must not contain spaces, control characters or any of ~ ^ : ? * [ \\"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"branch": "a", "newBranch": "b"}, ONE_BRANCH),
        ({}, ONE_BRANCH),
        ({"branch": "a", "fromRef": "main"}, "fromRef may only be set together with newBranch"),
        ({"expiresIn": "31d", "branch": "a"}, "expiresIn must be at most 30 days (30d or 720h)"),
        ({"expiresIn": "721h", "branch": "a"}, "expiresIn must be at most 30 days (30d or 720h)"),
        ({"expiresIn": "0s", "branch": "a"}, "expiresIn must be longer than zero"),
        ({"expiresIn": "-1h", "branch": "a"}, "expiresIn must be a Go duration such as 90m"),
        ({"expiresIn": "abc", "branch": "a"}, "expiresIn must be a Go duration such as 90m"),
        ({"previewPort": 0, "branch": "a"}, "should be greater than or equal to 1"),
        # Values that overflow Go's durations get the rule's message, not CEL's internals.
        ({"expiresIn": "99999999999999999999h", "branch": "a"}, "at most 30 days"),
        ({"expiresIn": "9999999999h", "branch": "a"}, "at most 30 days"),
        ({"expiresIn": "99999999999999999999d", "branch": "a"}, "at most 30 days"),
        ({"expiresIn": "9999999999999999999ns", "branch": "a"}, "at most 30 days"),
        ({"idleTimeout": "99999999999999999999h", "branch": "a"}, "idleTimeout must be at most"),
        ({"idleTimeout": "0s", "branch": "a"}, "idleTimeout must be longer than zero"),
        ({"idleTimeout": "soon", "branch": "a"}, "idleTimeout must be a Go duration"),
        ({"branch": "HEAD"}, "must not be HEAD"),
        ({"newBranch": "HEAD"}, "must not be HEAD"),
        ({"newBranch": "ORIG_HEAD"}, "must not be one of git's own refs"),
        ({"previewPort": 70000, "branch": "a"}, "should be less than or equal to 65535"),
    ],
)
def test_spec_rules(api, namespace, spec: dict[str, Any], message: str) -> None:
    body = session_manifest("s", "shop", **spec)
    assert message in create_refused(api, namespace, body)


@pytest.mark.parametrize(
    ("name", "messages"),
    [
        ("a..b", ["must not contain '..'"]),
        ("-x", ["must not start with '-'"]),
        ("a b", [SPACES]),
        ("x.lock", ["no path component may end with '.lock'"]),
        ("a@{b", ["must not contain '@{' or be '@'"]),
        ("$(touch /tmp/pwn)", [SPACES]),
        ("a\nb", [SPACES]),
        ("-c core.sshCommand=x", ["must not start with '-'", SPACES]),
        ("a//b", ["must not end with '/' or '.', or contain '//'"]),
        ("a/.b", ["no path component may start with '.', and it must not start with '/'"]),
        ("a~1", [SPACES]),
    ],
)
@pytest.mark.parametrize("field", ["branch", "newBranch", "fromRef"])
def test_bad_ref_names(api, namespace, field: str, name: str, messages: list[str]) -> None:
    spec = {field: name} if field != "fromRef" else {"newBranch": "ok", "fromRef": name}
    text = create_refused(api, namespace, session_manifest("s", "shop", **spec))
    assert f"spec.{field}" in text
    for message in messages:
        assert message in text


def test_git_valid_names_are_accepted_because_no_shell_sees_them(api, namespace) -> None:
    """git allows ';', '$', '(' in branch names; the operator passes argv without a shell."""
    for i, name in enumerate(["a;b", "$(id)", "a|b&c"]):
        create_session(api, namespace, session_manifest(f"s{i}", "shop", branch=name))


def test_name_longer_than_55_refused(api, namespace) -> None:
    name = "s" + "x" * 55
    assert len(name) == 56
    text = create_refused(api, namespace, session_manifest(name, "shop", branch="a"))
    assert "metadata.name must be a DNS-1035 label" in text
    assert "at most 55 characters" in text
    ok = "s" + "x" * 54
    create_session(api, namespace, session_manifest(ok, "shop", branch="a"))


def test_name_must_start_with_a_letter(api, namespace) -> None:
    text = create_refused(api, namespace, session_manifest("1abc", "shop", branch="a"))
    assert "metadata.name must be a DNS-1035 label" in text


def test_defaults_are_filled_in_by_the_server(api, namespace) -> None:
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a"))
    spec = get_session(api, namespace, "s")["spec"]
    assert spec == {
        "project": "shop",
        "branch": "feature-a",
        "expiresIn": "24h",
        "webUI": False,
        "previewPort": 8080,
        "credential": False,
    }


def test_immutable_fields(api, namespace) -> None:
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a"))
    assert "branch is immutable" in patch_refused(api, namespace, "s", {"branch": "other"})
    assert "project is immutable" in patch_refused(api, namespace, "s", {"project": "other"})
    swapped = patch_refused(api, namespace, "s", {"branch": None, "newBranch": "feature-a"})
    assert "branch is immutable" in swapped and "newBranch is immutable" in swapped
    # Mutable fields still change.
    patch(api, namespace, "s", {"expiresIn": "48h", "webUI": True, "previewPort": 9000})
    spec = get_session(api, namespace, "s")["spec"]
    assert (spec["expiresIn"], spec["webUI"], spec["previewPort"]) == ("48h", True, 9000)


def test_new_branch_and_from_ref_immutable(api, namespace) -> None:
    create_session(api, namespace, session_manifest("s", "shop", newBranch="t/x", fromRef="main"))
    assert "newBranch is immutable" in patch_refused(api, namespace, "s", {"newBranch": "t/y"})
    assert "fromRef is immutable" in patch_refused(api, namespace, "s", {"fromRef": "dev"})
    assert "fromRef is immutable" in patch_refused(api, namespace, "s", {"fromRef": None})


def test_checkin_is_one_way(api, namespace) -> None:
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a"))
    patch(api, namespace, "s", {"checkin": {}})
    assert get_session(api, namespace, "s")["spec"]["checkin"] == {
        "skipReview": False,
        "autoMerge": False,
    }
    one_way = "checkin is one-way: once set it cannot be removed or changed"
    assert one_way in patch_refused(api, namespace, "s", {"checkin": None})
    assert one_way in patch_refused(api, namespace, "s", {"checkin": {"autoMerge": True}})
    # Re-applying the same value is no change, so it is allowed.
    patch(api, namespace, "s", {"checkin": {"skipReview": False}})


@pytest.mark.parametrize(
    "spec",
    [
        {"expiresIn": "99999999999999999999h", "branch": "a"},
        {"expiresIn": "9999999999999999999999d", "branch": "a"},
        {"idleTimeout": "99999999999999999999m", "branch": "a"},
    ],
)
def test_no_message_shows_cel_internals(api, namespace, spec: dict[str, Any]) -> None:
    message = create_refused(api, namespace, session_manifest("s", "shop", **spec))
    for internal in ("type conversion", "google.protobuf", "evaluating rule", "<nil>"):
        assert internal not in message


def test_name_rule_names_the_field(api, namespace) -> None:
    message = create_refused(api, namespace, session_manifest("9-lives", "shop", branch="a"))
    assert "<nil>" not in message
    assert "metadata.name: Invalid value" in message
    assert "DNS-1035 label" in message


@pytest.mark.parametrize(
    "value", ["720h", "000001h", "30d", "1h30m", "0.5h", "2592000s", "43200m", "99999s"]
)
def test_bounded_durations_still_accepted(api, namespace, value: str) -> None:
    body = session_manifest("s", "shop", branch="a", expiresIn=value, idleTimeout=value)
    create_session(api, namespace, body)


def test_container_is_immutable(api, namespace) -> None:
    """A changed container would orphan the web UI started in the old one."""
    create_session(api, namespace, session_manifest("s", "shop", branch="a", container="dev"))
    assert get_session(api, namespace, "s")["spec"]["container"] == "dev"
    assert "container is immutable" in patch_refused(api, namespace, "s", {"container": "other"})
    assert "container is immutable" in patch_refused(api, namespace, "s", {"container": None})
    create_session(api, namespace, session_manifest("t", "shop", branch="a"))
    assert "container is immutable" in patch_refused(api, namespace, "t", {"container": "dev"})
    patch(api, namespace, "s", {"webUI": True})  # the rest of the spec still changes
    assert get_session(api, namespace, "s")["spec"]["container"] == "dev"


def test_credential_is_never_unset_while_active(api, namespace) -> None:
    """Set at creation or later; unset only while the Session is not Active (CEL on oldSelf)."""
    custom = client.CustomObjectsApi(api)

    def phase(name: str, value: str) -> None:
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, {"status": {"phase": value}}
        )

    create_session(api, namespace, session_manifest("s", "shop", branch="a"))
    phase("s", "Active")
    patch(api, namespace, "s", {"credential": True})  # set later: allowed
    text = patch_refused(api, namespace, "s", {"credential": False})
    assert "spec.credential" in text
    assert "credential cannot be unset while the session is Active" in text
    assert "check the session in (or delete it) to revoke its credential" in text
    patch(api, namespace, "s", {"expiresIn": "48h"})  # other changes still pass
    for other in ("Pending", "Provisioning", "Ended"):
        phase("s", other)
        patch(api, namespace, "s", {"credential": False})
        patch(api, namespace, "s", {"credential": True})
    # Never Active yet (no status at all): unset freely.
    create_session(api, namespace, session_manifest("t", "shop", branch="a", credential=True))
    patch(api, namespace, "t", {"credential": False})
