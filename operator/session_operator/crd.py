"""Renders the Session CRD from the pydantic models (``python -m session_operator.crd``).

The schema comes from the models so that the two cannot drift; the CEL rules
that need the whole spec or the old object are written here, next to the
messages a person reads when the API server refuses a Session.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from rdev_api import GROUP, KIND, PLURAL, VERSION
from rdev_api.durations import EXPIRES_IN_RE
from rdev_api.models import DNS1035_LABEL_RE, MAX_SESSION_NAME, SessionSpec, SessionStatus
from rdev_api.refnames import REF_RULES

CRD_PATH = Path(__file__).resolve().parents[2] / "crds" / "sessions.rdev.io.yaml"

SPEC_RULES: list[dict[str, str]] = [
    {
        "rule": "has(self.branch) != has(self.newBranch)",
        "message": "exactly one of branch or newBranch must be set",
    },
    {
        "rule": "!has(self.fromRef) || has(self.newBranch)",
        "message": "fromRef may only be set together with newBranch",
    },
    {"rule": "self.project == oldSelf.project", "message": "project is immutable"},
]
for _field in ("branch", "newBranch", "fromRef", "container"):
    SPEC_RULES.append(
        {
            "rule": (
                f"has(self.{_field}) == has(oldSelf.{_field})"
                f" && (!has(self.{_field}) || self.{_field} == oldSelf.{_field})"
            ),
            "message": f"{_field} is immutable",
        }
    )
SPEC_RULES.append(
    {
        "rule": "!has(oldSelf.checkin) || (has(self.checkin) && self.checkin == oldSelf.checkin)",
        "message": "checkin is one-way: once set it cannot be removed or changed",
    }
)


def cel_string(text: str) -> str:
    """A CEL single-quoted string literal holding ``text`` verbatim."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


_EXPIRES = cel_string(EXPIRES_IN_RE)
_NAME = cel_string(DNS1035_LABEL_RE)

# Go's duration() fails with a type-conversion error (CEL's internals in the
# message) when a value overflows int64 nanoseconds. Numbers within these digit
# bounds never overflow together within the field's 32 characters, and any
# number beyond them is over 30 days anyway, so the rules below call duration()
# and int() only inside this guard and refuse the rest as "at most 30 days".
_BOUNDED = cel_string(
    r"^(0*[0-9]{1,5}d|(0*[0-9]{1,5}(\.[0-9]+)?h|0*[0-9]{1,7}(\.[0-9]+)?m"
    r"|0*[0-9]{1,8}(\.[0-9]+)?s|0*[0-9]{1,11}(\.[0-9]+)?ms"
    r"|0*[0-9]{1,14}(\.[0-9]+)?(us|µs)|0*[0-9]{1,17}(\.[0-9]+)?ns)+)$"
)

EXPIRES_IN_RULES = [
    {
        "rule": f"self.matches({_EXPIRES})",
        "message": (
            "expiresIn must be a Go duration such as 90m, 24h or 1h30m, or whole days such as 7d"
        ),
    },
    {
        "rule": (
            f"!self.matches({_EXPIRES}) || (self.matches({_BOUNDED}) && (self.endsWith('d')"
            " ? int(self.substring(0, self.size() - 1)) <= 30"
            " : duration(self) <= duration('720h')))"
        ),
        "message": "expiresIn must be at most 30 days (30d or 720h)",
    },
    {
        "rule": (
            f"!self.matches({_EXPIRES}) || !self.matches({_BOUNDED}) || (self.endsWith('d')"
            " ? int(self.substring(0, self.size() - 1)) > 0"
            " : duration(self) > duration('0s'))"
        ),
        "message": "expiresIn must be longer than zero",
    },
]

ROOT_RULES = [
    {
        "rule": (
            f"self.metadata.name.matches({_NAME}) && size(self.metadata.name) <= {MAX_SESSION_NAME}"
        ),
        "message": (
            "metadata.name must be a DNS-1035 label (lower case letters, digits and '-',"
            f" starting with a letter) of at most {MAX_SESSION_NAME} characters,"
            " so that <name>-preview is a valid Service name"
        ),
        # Reported against the field, not the root ("<nil>: Invalid value: ...").
        "fieldPath": ".metadata.name",
        "reason": "FieldValueInvalid",
    },
    {
        # A transition rule at the root, where the old status is visible: the
        # credential is revoked by ending the session, not by unsetting the field.
        "rule": (
            "!(has(oldSelf.spec.credential) && oldSelf.spec.credential)"
            " || (has(self.spec.credential) && self.spec.credential)"
            " || !has(oldSelf.status) || !has(oldSelf.status.phase)"
            " || oldSelf.status.phase != 'Active'"
        ),
        "message": (
            "credential cannot be unset while the session is Active; check the session in"
            " (or delete it) to revoke its credential"
        ),
        "fieldPath": ".spec.credential",
        "reason": "FieldValueForbidden",
    },
]

_DROP = {"title", "default_factory"}


def _openapi(node: Any, defs: dict[str, Any]) -> Any:
    """Turn a pydantic JSON schema node into a structural OpenAPI v3 schema."""
    if isinstance(node, list):
        return [_openapi(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].split("/")[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _openapi(merged, defs)
    if "anyOf" in node:  # Optional[X]: the API server expresses it by omission
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if rest.get("default", 0) is None:
            rest.pop("default")
        return _openapi({**branches[0], **rest}, defs)
    out: dict[str, Any] = {}
    ref_name = node.get("x-rdev-ref-name", False)
    for key, value in node.items():
        if key in _DROP or key == "x-rdev-ref-name" or key == "$defs":
            continue
        if key == "properties":
            out[key] = {k: _openapi(v, defs) for k, v in value.items()}
        elif key == "items":
            out[key] = _openapi(value, defs)
        elif key == "enum":
            out[key] = list(value)
            out.setdefault("type", "string")
        elif key == "additionalProperties" and value is False:
            continue
        else:
            out[key] = value
    if "pattern" in out and out.get("type") == "string":
        pass
    if ref_name:
        out["x-kubernetes-validations"] = [{"rule": r.cel, "message": r.message} for r in REF_RULES]
    return out


def _schema(model: type[Any]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return dict(_openapi(raw, raw.get("$defs", {})))


def spec_schema() -> dict[str, Any]:
    schema = _schema(SessionSpec)
    schema["properties"]["expiresIn"]["x-kubernetes-validations"] = EXPIRES_IN_RULES
    schema["properties"]["idleTimeout"]["x-kubernetes-validations"] = [
        {**rule, "message": rule["message"].replace("expiresIn", "idleTimeout")}
        for rule in EXPIRES_IN_RULES
    ]
    schema["x-kubernetes-validations"] = SPEC_RULES
    checkin = schema["properties"]["checkin"]
    checkin.pop("description", None)
    checkin["description"] = SessionSpec.model_fields["checkin"].description
    return schema


def status_schema() -> dict[str, Any]:
    schema = _schema(SessionStatus)
    schema.pop("description", None)
    schema["description"] = "What the operator observed and did; written only by the operator."
    conditions = schema["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    for _key in ("type", "status"):
        conditions["items"].setdefault("required", [])
    # A Session no operator has looked at yet reads InProgress in kstatus (observed
    # generation 0 is behind every generation), not Current like a finished one.
    schema["default"] = {"observedGeneration": 0}
    return schema


def render() -> dict[str, Any]:
    spec = spec_schema()
    status = status_schema()
    columns = [
        ("Project", ".spec.project"),
        ("Branch", ".status.branch"),
        ("Phase", ".status.phase"),
        ("Web UI", ".status.webUI"),
        ("Preview", ".status.previewURL"),
        ("Expires", ".status.expiresAt"),
        ("Owner", ".status.createdBy"),
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": "session",
                "shortNames": ["sess"],
                "categories": ["rdev"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": n, "type": "string", "jsonPath": p} for n, p in columns
                    ]
                    + [
                        {
                            "name": "Age",
                            "type": "date",
                            "jsonPath": ".metadata.creationTimestamp",
                        }
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": (
                                "An interactive remote-development session on a project's"
                                " pod: a git worktree, an optional browser coding UI and a"
                                " preview Service."
                            ),
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {
                                    "type": "object",
                                    "properties": {"name": {"type": "string"}},
                                },
                                "spec": spec,
                                "status": status,
                            },
                            "x-kubernetes-validations": ROOT_RULES,
                        }
                    },
                }
            ],
        },
    }


def render_yaml() -> str:
    header = "# Generated by `python -m session_operator.crd` from the models. Do not edit.\n"
    return header + yaml.safe_dump(render(), sort_keys=False, width=120, allow_unicode=True)


def main(argv: list[str]) -> int:
    text = render_yaml()
    if "--check" in argv:
        current = CRD_PATH.read_text() if CRD_PATH.exists() else ""
        if current != text:
            print(f"{CRD_PATH} is stale: run python -m session_operator.crd", file=sys.stderr)
            return 1
        return 0
    CRD_PATH.parent.mkdir(parents=True, exist_ok=True)
    CRD_PATH.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
