"""Operator settings: environment variables prefixed ``RDEV_``, parsed once at start-up.

Invalid values stop the operator at start with a message naming the variable,
rather than failing later inside a handler.
"""

from __future__ import annotations

import difflib
import os
import shlex
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from rdev_api import shards as sharding
from rdev_api.durations import parse_duration
from rdev_api.names import WEBUI_PORT
from rdev_api.refnames import ref_name_problems

_TEMPLATE_KEYS = {"session", "namespace", "project", "port", "service"}
# Byte counts, written with Kubernetes' binary suffixes (parse_size, size_text).
SIZE_FIELDS = ("exec_output_limit",)


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

    repo_path: str = Field(
        default="/workspace/repo",
        description="repository in the pod; pod annotation `rdev.io/repo-path` overrides",
    )
    worktree_root: str = Field(
        default="/workspace/sessions",
        description="worktree root in the pod; pod annotation `rdev.io/worktree-root` overrides",
    )
    webui_command: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("claude-code-ui",),
        description="web UI command (split like a shell would, never run through one)",
    )
    webui_port: int = Field(
        default=WEBUI_PORT,
        ge=1,
        le=65535,
        description="web UI port, exported to it as `PORT` and `SERVER_PORT`",
    )
    webui_health_path: str = Field(
        default="/health",
        pattern=r"^(/\S*)?$",
        description=(
            "the web UI is `Running` only once `GET <this path>` on its port answers inside the"
            " pod; empty: no check (Running as soon as it has not exited)"
        ),
    )
    webui_start_timeout: timedelta = Field(
        default=timedelta(seconds=60),
        description=(
            "how long a started web UI has to answer its health path before it is stopped and"
            " `Failed` (`WebUIUnhealthy`), retried with backoff"
        ),
    )
    protected_branches: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset({"main", "master"}),
        description="branches sessions may not check out or create",
    )
    preview_url_template: str = Field(
        default="",
        description=(
            "e.g. `https://{session}--{namespace}.preview.example.com`; placeholders `{session}`,"
            " `{namespace}`, `{project}`, `{service}`, `{port}`; empty: "
            "`http://<service>.<namespace>.svc.cluster.local:<port>`"
        ),
    )
    ingress_class: str = Field(
        default="",
        description="with `RDEV_INGRESS_HOST_TEMPLATE`, an Ingress per session; empty: none",
    )
    ingress_host_template: str = Field(
        default="", description="host of that Ingress (same placeholders)"
    )
    credential_server: str = Field(
        default="",
        description=(
            "the API server address written into session credentials (`spec.credential`),"
            " e.g. `https://k8s.example.com:6443`, with the CA the operator trusts; empty:"
            " the address the operator itself talks to"
        ),
    )
    changes_interval: timedelta = Field(
        default=timedelta(minutes=5),
        description=(
            "how often `status.changes` is refreshed and a session credential's objects are"
            " checked (one deleted by hand is made again)"
        ),
    )
    progress_deadline: timedelta = Field(
        default=timedelta(minutes=5),
        description="provisioning time before `ProgressDeadlineExceeded`",
    )
    webui_check_interval: timedelta = Field(
        default=timedelta(seconds=60), description="how often a running web UI is checked"
    )
    stalled_recheck_interval: timedelta = Field(
        default=timedelta(seconds=60),
        description=(
            "first re-check of a stalled Session (a branch may be pushed later); the gap then "
            "doubles"
        ),
    )
    stalled_recheck_max: timedelta = Field(
        default=timedelta(minutes=30),
        description=(
            "the longest gap between re-checks of a stalled Session (a longer"
            " `RDEV_STALLED_RECHECK_INTERVAL` wins)"
        ),
    )
    retry_interval: timedelta = Field(
        default=timedelta(seconds=10),
        description="first retry delay after a failed exec (doubles, at most 5 minutes)",
    )
    exec_timeout: timedelta = Field(
        default=timedelta(seconds=60),
        description=(
            "bound on every exec into a pod, enforced in the pod: each command runs under "
            "`timeout -s TERM -k 3` (GNU coreutils, or busybox 1.35 or later, in the project "
            "image), so a hung `git fetch` is stopped, not abandoned (stopping the web UI: "
            "`RDEV_WEBUI_STOP_GRACE` more)"
        ),
    )
    exec_output_limit: int = Field(
        default=1 << 20,
        ge=4096,
        description=(
            "bytes read from one exec (stdout and stderr, counted as they arrive; bytes, or "
            "`Ki`/`Mi`/`Gi`, at least 4096); past it the stream is closed and the step fails with"
            " `<step>: output exceeded the 1 MiB limit`"
        ),
    )
    pod_gone_grace: timedelta = Field(
        default=timedelta(minutes=10),
        description=(
            "how long a placed session waits for its absent pod before `ProjectPodGone` (a "
            "restart of the operator starts the wait again)"
        ),
    )
    webui_stop_grace: timedelta = Field(
        default=timedelta(seconds=30),
        description="how long a stopping web UI gets after SIGTERM before SIGKILL",
    )
    webui_allowed_from: tuple[WebUIPeer, ...] = Field(
        default=(),
        description=(
            "JSON list of NetworkPolicy peers admitted to the web UI port, each "
            '`{"namespaceSelector": {"matchLabels": {...}}, "podSelector": {"matchLabels": '
            "{...}}}` (either or both); empty: none (see docs/security.md)"
        ),
    )
    namespaces: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="comma-separated namespaces to watch; empty: all"
    )
    shards: int = Field(
        default=1,
        ge=1,
        le=sharding.MAX_SHARDS,
        description=(
            "how many shards split the namespaces by the FNV-1a hash of their name; above `1`"
            " the API server must have the `ShardedListAndWatch` feature gate (alpha,"
            " Kubernetes 1.36), else the operator refuses to start (see docs/scaling.md)"
        ),
    )
    shard: int | None = Field(
        default=None,
        ge=0,
        validate_default=True,
        description=(
            "this replica's shard, `0` to `RDEV_SHARDS`-1; empty: the ordinal at the end of"
            " the pod's name (`POD_NAME`, else `HOSTNAME`) modulo `RDEV_SHARDS`, so a"
            " StatefulSet of 2N replicas gives every shard a standby"
        ),
    )
    shard_boundaries: Annotated[tuple[int, ...], NoDecode] = Field(
        default=(),
        description=(
            "comma-separated hex hashes (`0x…`), `RDEV_SHARDS`-1 of them, rising: where"
            " the slices of the ring meet, as `kubectl session shards` plans them to balance"
            " the Sessions; empty: equal slices. Every replica needs the same value"
            " (see docs/scaling.md)"
        ),
    )
    workers: int = Field(
        default=16,
        ge=1,
        le=256,
        description=(
            "concurrent reconciles (async workers on kopf's event loop), plus a reserve of an "
            "eighth (at least 1) for namespaces with none in flight"
        ),
    )
    metrics_port: int = Field(
        default=8000, ge=0, le=65535, description="Prometheus metrics (`0`: off)"
    )
    health_port: int = Field(
        default=8080, ge=0, le=65535, description="kopf liveness endpoint `/healthz` (`0`: off)"
    )
    log_format: str = Field(default="text", pattern="^(text|json)$", description="`text` or `json`")
    log_level: str = Field(
        default="INFO",
        pattern="^(DEBUG|INFO|WARNING|ERROR)$",
        description="`DEBUG`, `INFO`, `WARNING`, `ERROR`",
    )
    peering: str = Field(default="", description="kopf peering name for HA (empty: standalone)")
    priority: int = Field(
        default=0,
        description=(
            "peering priority; `0`: derived from start time so the oldest replica keeps acting"
        ),
    )
    peering_lifetime: timedelta = Field(
        default=timedelta(seconds=20),
        description="how long a silent peer is trusted; bounds the handover time",
    )
    delete_retries: int = Field(
        default=6,
        ge=1,
        description="exec attempts during deletion before the worktree is left in place",
    )
    expiry_warning: timedelta = Field(
        default=timedelta(minutes=15),
        description=(
            "how long before expiry or the idle stop `ExpiringSoon` is posted (`0s`: never)"
        ),
    )
    push_on_checkin: bool = Field(
        default=True,
        description="push the session's branch to `origin` at a checkin that requests review",
    )

    @field_validator(
        "changes_interval",
        "progress_deadline",
        "webui_check_interval",
        "stalled_recheck_interval",
        "retry_interval",
        "exec_timeout",
        "pod_gone_grace",
        "webui_stop_grace",
        "webui_start_timeout",
        "stalled_recheck_max",
        "peering_lifetime",
        "expiry_warning",
        mode="before",
    )
    @classmethod
    def _parse_duration(cls, value: object) -> object:
        return _duration(value)

    @field_validator(*SIZE_FIELDS, mode="before")
    @classmethod
    def _parse_size(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_size(value)
        return value

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

    @field_validator("shard_boundaries", mode="before")
    @classmethod
    def _parse_boundaries(cls, value: object, info: ValidationInfo) -> object:
        count = info.data.get("shards")
        if not isinstance(count, int):
            return ()  # RDEV_SHARDS itself is invalid and is reported
        if isinstance(value, str):
            return sharding.parse_cuts(value, count)
        if isinstance(value, tuple | list) and all(isinstance(v, int) for v in value):
            return sharding.check_cuts(value, count) if value else ()
        return value

    @field_validator("credential_server")
    @classmethod
    def _check_server(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be a URL starting with https:// (or http://)")
        return value

    @field_validator("shard")
    @classmethod
    def _resolve_shard(cls, value: int | None, info: ValidationInfo) -> int:
        count = info.data.get("shards")
        if not isinstance(count, int):
            return value or 0  # RDEV_SHARDS itself is invalid and is reported
        if value is None:
            if count == 1:
                return 0
            pod = os.environ.get("POD_NAME") or os.environ.get("HOSTNAME") or ""
            found = sharding.ordinal(pod)
            if found is None:
                raise ValueError(
                    f"unset, and the pod name {pod!r} ends in no ordinal: set it to 0..{count - 1}"
                )
            return found % count
        if value >= count:
            raise ValueError(f"must be below RDEV_SHARDS={count}")
        return value

    @property
    def shard_index(self) -> int:
        """This replica's shard (resolved by ``_resolve_shard``, never None after validation)."""
        return self.shard or 0

    @property
    def shard_range(self) -> tuple[int, int]:
        """This replica's slice ``[lo, hi)`` of the hash ring (all of it unsharded)."""
        return sharding.bounds(self.shard_index, self.shards, self.shard_boundaries)

    @property
    def shard_selector(self) -> str:
        """This replica's ``shardSelector`` on every LIST and watch; empty: unsharded."""
        return sharding.shard_selector(self.shard_index, self.shards, self.shard_boundaries)

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


def _in_units(size: int) -> tuple[int, str]:
    """The largest binary unit that divides ``size`` exactly (``""``: bytes)."""
    for unit in ("Gi", "Mi", "Ki"):
        factor = _SIZE_UNITS[unit]
        if size >= factor and size % factor == 0:
            return size // factor, unit
    return size, ""


def size_text(size: int) -> str:
    """``1Mi``: a size as the variable takes it."""
    number, unit = _in_units(size)
    return f"{number}{unit}"


def format_size(size: int) -> str:
    """``1 MiB``, ``512 KiB`` or ``1000 bytes``: a size as a person reads it in a message."""
    number, unit = _in_units(size)
    return f"{number} {unit}B" if unit else f"{number} bytes"


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


def unknown_variables(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """``RDEV_*`` names no setting reads, each with the nearest known name (None: none near).

    A misspelt variable would otherwise be silently ignored; only names, never
    values, leave this function.
    """
    known = [name.upper() for name in Settings.model_fields]
    found = []
    for variable in sorted(environ):
        name = variable.upper().removeprefix("RDEV_")
        if variable.upper().startswith("RDEV_") and name not in known:
            near = difflib.get_close_matches(name, known, n=1)
            found.append((variable, f"RDEV_{near[0]}" if near else None))
    return found
