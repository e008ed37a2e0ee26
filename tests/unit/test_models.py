"""SessionSpec: the rules people meet when they write a Session."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from rdev_api.models import (
    Checkin,
    Condition,
    Phase,
    SessionSpec,
    SessionStatus,
    WebUIState,
)


def spec(**fields: Any) -> dict[str, Any]:
    return {"project": "shop", **fields}


def errors(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        SessionSpec.model_validate(data)
    return str(info.value)


def test_defaults() -> None:
    s = SessionSpec.model_validate(spec(branch="feature-a"))
    assert s.expires_in == "24h"
    assert s.expires_after == timedelta(hours=24)
    assert s.web_ui is False
    assert s.preview_port == 8080
    assert s.checkin is None
    assert s.container is None
    assert s.feature_slug is None
    assert s.new_branch is None
    assert s.from_ref is None
    assert s.wanted_branch == "feature-a"


def test_aliases_in_and_out() -> None:
    data = spec(
        newBranch="topic/x",
        fromRef="main",
        featureSlug="cart",
        expiresIn="7d",
        webUI=True,
        previewPort=3000,
        container="dev",
        credential=True,
        checkin={"skipReview": True, "autoMerge": True},
    )
    s = SessionSpec.model_validate(data)
    assert s.credential
    assert (s.new_branch, s.from_ref, s.feature_slug) == ("topic/x", "main", "cart")
    assert (s.expires_in, s.web_ui, s.preview_port) == ("7d", True, 3000)
    assert s.checkin == Checkin(skip_review=True, auto_merge=True)
    assert s.wanted_branch == "topic/x"
    assert s.model_dump(by_alias=True, exclude_none=True) == data


def test_python_names_accepted_too() -> None:
    s = SessionSpec(project="shop", new_branch="x", preview_port=9000)
    assert s.new_branch == "x" and s.preview_port == 9000


def test_exactly_one_branch() -> None:
    assert "exactly one of branch or newBranch" in errors(spec(branch="a", newBranch="b"))
    assert "exactly one of branch or newBranch" in errors(spec())


def test_from_ref_only_with_new_branch() -> None:
    assert "fromRef may only be set together with newBranch" in errors(
        spec(branch="a", fromRef="main")
    )
    SessionSpec.model_validate(spec(newBranch="a", fromRef="main"))


@pytest.mark.parametrize("field", ["branch", "newBranch"])
@pytest.mark.parametrize(
    "name", ["a..b", "-x", "a b", "x.lock", "a@{b", "$(touch /tmp/pwn)", "a\nb", "-c x=y"]
)
def test_bad_ref_names(field: str, name: str) -> None:
    assert "not a valid git branch name" in errors(spec(**{field: name}))


def test_bad_from_ref() -> None:
    assert "not a valid git branch name" in errors(spec(newBranch="a", fromRef="-x"))


def test_empty_and_too_long_refs() -> None:
    errors(spec(branch=""))
    errors(spec(branch="a" * 201))
    SessionSpec.model_validate(spec(branch="a" * 200))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("7d", timedelta(days=7)),
        ("30d", timedelta(days=30)),
        ("720h", timedelta(days=30)),
        ("1ns", timedelta(0)),
    ],
)
def test_expires_in_ok(text: str, expected: timedelta) -> None:
    assert SessionSpec.model_validate(spec(branch="a", expiresIn=text)).expires_after == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("31d", "at most 30 days"),
        ("721h", "at most 30 days"),
        ("720h1ns", "at most 30 days"),
        ("720.0000000001h", "at most 30 days"),
        ("99999999999999d", "at most 30 days"),
        ("99999999999999999999h", "too long"),
        ("0s", "longer than zero"),
        ("0d", "longer than zero"),
        ("0.0000000001s", "longer than zero"),
        ("-1h", "not a duration"),
        ("abc", "not a duration"),
        ("", "not a duration"),
        ("1h ", "not a duration"),
    ],
)
def test_expires_in_rejected(text: str, message: str) -> None:
    assert message in errors(spec(branch="a", expiresIn=text))


def test_expires_in_max_length() -> None:
    errors(spec(branch="a", expiresIn="1" * 31 + "s"))  # 32 chars but too long a duration
    assert "at most 32 characters" in errors(spec(branch="a", expiresIn="0" * 32 + "1s"))


@pytest.mark.parametrize("port", [1, 80, 8080, 65535])
def test_preview_port_ok(port: int) -> None:
    assert SessionSpec.model_validate(spec(branch="a", previewPort=port)).preview_port == port


@pytest.mark.parametrize("port", [0, -1, 65536, 70000])
def test_preview_port_bounds(port: int) -> None:
    errors(spec(branch="a", previewPort=port))


@pytest.mark.parametrize("project", ["", "Shop", "-shop", "shop-", "sh_op", "a" * 64, "shop\n"])
def test_project_must_be_a_dns_label(project: str) -> None:
    errors({"project": project, "branch": "a"})


def test_project_required() -> None:
    assert "project" in errors({"branch": "a"})


@pytest.mark.parametrize("field", ["container", "featureSlug"])
def test_labels_must_be_dns_labels(field: str) -> None:
    errors(spec(branch="a", **{field: "Not_A_Label"}))
    SessionSpec.model_validate(spec(branch="a", **{field: "ok-1"}))


def test_unknown_fields_rejected() -> None:
    assert "extra" in errors(spec(branch="a", bogus=1)).lower()
    assert "extra" in errors(spec(branch="a", checkin={"force": True})).lower()


def test_checkin_defaults() -> None:
    s = SessionSpec.model_validate(spec(branch="a", checkin={}))
    assert s.checkin == Checkin(skip_review=False, auto_merge=False)


def test_status_round_trip_uses_aliases_and_drops_none() -> None:
    status = SessionStatus(
        phase=Phase.ACTIVE,
        web_ui=WebUIState.RUNNING,
        preview_url="http://x",
        observed_generation=3,
        conditions=[Condition(type="Ready", status="True", lastTransitionTime="t")],
    )
    dumped = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert dumped == {
        "phase": "Active",
        "webUI": "Running",
        "previewURL": "http://x",
        "observedGeneration": 3,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "",
                "message": "",
                "lastTransitionTime": "t",
            }
        ],
    }
    again = SessionStatus.model_validate(dumped)
    assert again == status
    assert again.condition("Ready") is not None
    assert again.condition("Stalled") is None


def test_status_ignores_unknown_fields() -> None:
    assert SessionStatus.model_validate({"phase": "Pending", "future": 1}).phase == Phase.PENDING
