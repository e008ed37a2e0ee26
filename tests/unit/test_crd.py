"""The committed CRD is what the models render, and it carries what kubectl users see."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import yaml

from rdev_api.models import SessionSpec
from rdev_api.refnames import REF_RULES
from session_operator import crd

ROOT = crd.CRD_PATH.parents[1]


def load() -> dict[str, Any]:
    return dict(yaml.safe_load(crd.CRD_PATH.read_text()))


def version(doc: dict[str, Any]) -> dict[str, Any]:
    (v,) = doc["spec"]["versions"]
    return dict(v)


def spec_schema(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(version(doc)["schema"]["openAPIV3Schema"]["properties"]["spec"])


def test_committed_crd_is_current() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "session_operator.crd", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert crd.render_yaml() == crd.CRD_PATH.read_text()


def test_check_detects_a_stale_crd(tmp_path: Any, monkeypatch: Any) -> None:
    stale = tmp_path / "crd.yaml"
    stale.write_text(crd.render_yaml() + "# edited\n")
    monkeypatch.setattr(crd, "CRD_PATH", stale)
    assert crd.main(["--check"]) == 1
    assert crd.main([]) == 0
    assert crd.main(["--check"]) == 0


def _walk(schema: dict[str, Any], path: str) -> list[str]:
    missing = [] if schema.get("description") else [path]
    for name, child in (schema.get("properties") or {}).items():
        missing += _walk(child, f"{path}.{name}")
    if "items" in schema:
        missing += _walk(schema["items"], f"{path}[]")
    return missing


def test_every_spec_and_status_field_has_a_description() -> None:
    doc = load()
    props = version(doc)["schema"]["openAPIV3Schema"]["properties"]
    assert _walk(props["spec"], "spec") == []
    assert _walk(props["status"], "status") == []


def test_spec_fields_match_the_model() -> None:
    aliases = {f.alias or name for name, f in SessionSpec.model_fields.items()}
    assert set(spec_schema(load())["properties"]) == aliases


def test_printer_columns() -> None:
    columns = version(load())["additionalPrinterColumns"]
    assert [c["name"] for c in columns] == [
        "Project",
        "Branch",
        "Phase",
        "Web UI",
        "Preview",
        "Expires",
        "Owner",
        "Age",
    ]
    by_name = {c["name"]: c for c in columns}
    assert by_name["Project"]["jsonPath"] == ".spec.project"
    assert by_name["Phase"]["jsonPath"] == ".status.phase"
    assert by_name["Preview"]["jsonPath"] == ".status.previewURL"
    assert by_name["Age"] == {
        "name": "Age",
        "type": "date",
        "jsonPath": ".metadata.creationTimestamp",
    }


def test_names_and_subresources() -> None:
    doc = load()
    names = doc["spec"]["names"]
    assert doc["metadata"]["name"] == "sessions.rdev.io"
    assert doc["spec"]["group"] == "rdev.io"
    assert doc["spec"]["scope"] == "Namespaced"
    assert names["kind"] == "Session"
    assert names["shortNames"] == ["sess"]
    assert names["categories"] == ["rdev"]
    v = version(doc)
    assert v["name"] == "v1alpha1" and v["served"] and v["storage"]
    assert v["subresources"] == {"status": {}}


def test_defaults_and_required() -> None:
    spec = spec_schema(load())
    assert spec["required"] == ["project"]
    assert spec["properties"]["expiresIn"]["default"] == "24h"
    assert spec["properties"]["webUI"]["default"] is False
    assert spec["properties"]["previewPort"]["default"] == 8080
    assert spec["properties"]["previewPort"]["minimum"] == 1
    assert spec["properties"]["previewPort"]["maximum"] == 65535


def test_ref_fields_carry_every_ref_rule() -> None:
    spec = spec_schema(load())
    expected = [{"rule": r.cel, "message": r.message} for r in REF_RULES]
    for field in ("branch", "newBranch", "fromRef"):
        assert spec["properties"][field]["x-kubernetes-validations"] == expected
        assert spec["properties"][field]["maxLength"] == 200


def test_cross_field_and_transition_rules() -> None:
    spec = spec_schema(load())
    messages = [r["message"] for r in spec["x-kubernetes-validations"]]
    for text in (
        "exactly one of branch or newBranch must be set",
        "fromRef may only be set together with newBranch",
        "project is immutable",
        "branch is immutable",
        "newBranch is immutable",
        "fromRef is immutable",
        "container is immutable",
        "checkin is one-way: once set it cannot be removed or changed",
    ):
        assert text in messages
    root = version(load())["schema"]["openAPIV3Schema"]
    assert "55" in root["x-kubernetes-validations"][0]["rule"]


def test_cel_string_escapes() -> None:
    assert crd.cel_string("a'b\\c") == "'a\\'b\\\\c'"


def test_conditions_are_a_map_list_keyed_by_type() -> None:
    status = version(load())["schema"]["openAPIV3Schema"]["properties"]["status"]
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert set(conditions["items"]["required"]) >= {"type", "status"}
