"""Operator settings: environment variables prefixed ``RDEV_``, parsed once at start-up.

Invalid values stop the operator at start with a message naming the variable,
rather than failing later inside a handler.
"""

from __future__ import annotations

import shlex
from datetime import timedelta
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from rdev_api.durations import parse_duration
from rdev_api.names import WEBUI_PORT
from rdev_api.refnames import ref_name_problems

_TEMPLATE_KEYS = {"session", "namespace", "project", "port", "service"}


def _duration(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value.strip())
    return value


class _Selector(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    match_labels: dict[str, str] = Field(alias="matchLabels", min_length=1)


class WebUIPeer(BaseModel):
    """One NetworkPolicy peer (no ipBlock: the web UI is never opened to addresses)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    namespace_selector: _Selector | None = Field(default=None, alias="namespaceSelector")
    pod_selector: _Selector | None = Field(default=None, alias="podSelector")

    @model_validator(mode="after")
    def _some_selector(self) -> WebUIPeer:
        if self.namespace_selector is None and self.pod_selector is None:
            raise ValueError("a peer needs namespaceSelector or podSelector")
        return self

    def as_peer(self) -> dict[str, object]:
        return self.model_dump(by_alias=True, exclude_none=True)

    def __hash__(self) -> int:
        return hash(repr(self.as_peer()))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RDEV_", extra="ignore", frozen=True)

    repo_path: str = "/workspace/repo"
    worktree_root: str = "/workspace/sessions"
    webui_command: Annotated[tuple[str, ...], NoDecode] = ("claude-code-ui",)
    webui_port: int = Field(default=WEBUI_PORT, ge=1, le=65535)
    protected_branches: Annotated[frozenset[str], NoDecode] = frozenset({"main", "master"})
    preview_url_template: str = ""
    ingress_class: str = ""
    ingress_host_template: str = ""
    changes_interval: timedelta = timedelta(minutes=5)
    progress_deadline: timedelta = timedelta(minutes=5)
    webui_check_interval: timedelta = timedelta(seconds=60)
    stalled_recheck_interval: timedelta = timedelta(seconds=60)
    stalled_recheck_max: timedelta = timedelta(minutes=30)
    retry_interval: timedelta = timedelta(seconds=10)
    exec_timeout: timedelta = timedelta(seconds=60)
    exec_output_limit: int = Field(default=1 << 20, ge=4096)  # bytes read from one exec
    pod_gone_grace: timedelta = timedelta(minutes=10)
    webui_stop_grace: timedelta = timedelta(seconds=30)
    # NetworkPolicy peers admitted to the web UI port: a JSON list of objects with
    # namespaceSelector and/or podSelector ({"matchLabels": {...}}). Default: none.
    webui_allowed_from: tuple[WebUIPeer, ...] = ()
    namespaces: Annotated[tuple[str, ...], NoDecode] = ()
    workers: int = Field(default=16, ge=1, le=256)
    metrics_port: int = Field(default=8000, ge=0, le=65535)
    health_port: int = Field(default=8080, ge=0, le=65535)
    log_format: str = Field(default="text", pattern="^(text|json)$")
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    peering: str = ""  # empty: standalone; a name: kopf peering for HA
    priority: int = 0  # 0: derived from start time, so the oldest instance keeps acting
    peering_lifetime: timedelta = timedelta(seconds=20)
    delete_retries: int = Field(default=6, ge=1)
    expiry_warning: timedelta = timedelta(minutes=15)
    push_on_checkin: bool = True

    @field_validator(
        "changes_interval",
        "progress_deadline",
        "webui_check_interval",
        "stalled_recheck_interval",
        "retry_interval",
        "exec_timeout",
        "pod_gone_grace",
        "webui_stop_grace",
        "stalled_recheck_max",
        "peering_lifetime",
        "expiry_warning",
        mode="before",
    )
    @classmethod
    def _parse_duration(cls, value: object) -> object:
        return _duration(value)

    @field_validator("exec_output_limit", mode="before")
    @classmethod
    def _parse_size(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_size(value)
        return value

    @model_validator(mode="after")
    def _recheck_bounds(self) -> Settings:
        if self.stalled_recheck_max < self.stalled_recheck_interval:
            raise ValueError(
                "RDEV_STALLED_RECHECK_MAX must be at least RDEV_STALLED_RECHECK_INTERVAL"
            )
        return self

    @field_validator("webui_command", mode="before")
    @classmethod
    def _split_command(cls, value: object) -> object:
        if isinstance(value, str):
            argv = shlex.split(value)
            if not argv:
                raise ValueError("must name a command")
            return tuple(argv)
        return value

    @field_validator("protected_branches", mode="before")
    @classmethod
    def _split_branches(cls, value: object) -> object:
        if isinstance(value, str):
            names = [n.strip() for n in value.split(",") if n.strip()]
            for name in names:
                if ref_name_problems(name):
                    raise ValueError(f"{name!r} is not a valid branch name")
            return frozenset(names)
        return value

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split_namespaces(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(n.strip() for n in value.split(",") if n.strip())
        return value

    @field_validator("preview_url_template", "ingress_host_template")
    @classmethod
    def _check_template(cls, value: str) -> str:
        if value:
            try:
                value.format(**dict.fromkeys(_TEMPLATE_KEYS, "x"))
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(
                    f"unknown placeholder {exc}; use {{session}}, {{namespace}}, {{project}},"
                    " {service} or {port}"
                ) from exc
        return value


_SIZE_UNITS = {"": 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}


def parse_size(text: str) -> int:
    """Bytes from ``1048576``, ``512Ki`` or ``1Mi`` (Kubernetes' binary suffixes)."""
    text = text.strip()
    for unit in ("Ki", "Mi", "Gi"):
        if text.endswith(unit):
            number, factor = text[: -len(unit)], _SIZE_UNITS[unit]
            break
    else:
        number, factor = text, 1
    if not number.isdigit():
        raise ValueError(f"{text!r} is not a size: use bytes, or a number with Ki, Mi or Gi")
    return int(number) * factor


def format_size(size: int) -> str:
    """``1 MiB``, ``512 KiB`` or ``1000 bytes``: a size as a person reads it in a message."""
    for unit in ("Gi", "Mi", "Ki"):
        factor = _SIZE_UNITS[unit]
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}B"
    return f"{size} bytes"


class SettingsError(SystemExit):
    """Start-up refused because of a bad setting; the message names the variable."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = "RDEV_" + str(err["loc"][0]).upper() if err["loc"] else "RDEV_*"
            lines.append(f"{name}: {err['msg']}")
        raise SettingsError("invalid operator settings:\n  " + "\n  ".join(lines)) from None
