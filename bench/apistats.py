"""Counting API requests: the API server's own metrics and its audit log.

``apiserver_request_total`` counts every client (the operator, the benchmark,
kwok, the controller-manager); the audit log names the user of each request, so
the operator's and the floor's ServiceAccounts are counted exactly, exec streams
included. A request is one auditID (long-running ones log two stages).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
_LINE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
Key = tuple[str, str, str]  # verb, resource, subresource


def parse_request_total(text: str) -> Counter[Key]:
    out: Counter[Key] = Counter()
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        labels = dict(_LABEL.findall(match.group("labels")))
        key = (labels.get("verb", ""), labels.get("resource", ""), labels.get("subresource", ""))
        out[key] += int(float(match.group("value")))
    return out


def diff(after: Counter[Key], before: Counter[Key]) -> Counter[Key]:
    out: Counter[Key] = Counter()
    for key, value in after.items():
        delta = value - before.get(key, 0)
        if delta:
            out[key] = delta
    return out


def metrics_is_write(verb: str) -> bool:
    return verb in {"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"}


@dataclass(frozen=True)
class AuditRequest:
    audit_id: str
    user: str
    user_agent: str
    verb: str
    resource: str
    subresource: str
    t: float
    code: int
    detail: str = ""
    namespace: str = ""
    name: str = ""
    command: str = ""  # an exec's argv, long arguments as <sha1:…> (see short_argv)
    subject: str = ""  # an Event's: the kind/name it is about (logged at level Request)

    @property
    def is_exec(self) -> bool:
        return self.resource == "pods" and self.subresource == "exec"

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS and not self.is_exec

    @property
    def client(self) -> str:
        ua = self.user_agent.lower()
        if ua.startswith("kopf"):
            return "kopf (aiohttp)"
        if ua.startswith("openapi-generator"):
            return "kubernetes client"
        if self.is_exec:
            return "exec websocket"
        return self.user_agent.split(" ")[0] or "?"


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class AuditLog:
    """Reads the audit log incrementally; keeps one record per auditID.

    The API server rotates the log at 100 MB (--audit-log-maxsize) to
    ``audit-<time>.log``; the rest of the rotated file is read before the new one.
    """

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.inode: int | None = None
        self.requests: dict[str, AuditRequest] = {}

    @property
    def available(self) -> bool:
        return self.path.exists()

    def read(self) -> None:
        if not self.path.exists():
            return
        inode = self.path.stat().st_ino
        if self.inode is not None and inode != self.inode:
            for old in self.path.parent.glob(f"{self.path.stem}-*{self.path.suffix}"):
                if old.stat().st_ino == self.inode:
                    self._read_from(old)
            self.offset = 0
        self.inode = inode
        self._read_from(self.path)

    def _read_from(self, path: Path) -> None:
        with path.open("rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        for line in data[:end].splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            aid = ev.get("auditID", "")
            if aid in self.requests and ev.get("stage") != "ResponseComplete":
                continue
            ref = ev.get("objectRef") or {}
            self.requests[aid] = AuditRequest(
                audit_id=aid,
                user=(ev.get("user") or {}).get("username", ""),
                user_agent=ev.get("userAgent", ""),
                verb=ev.get("verb", ""),
                resource=ref.get("resource", ""),
                subresource=ref.get("subresource", ""),
                t=_ts(ev.get("requestReceivedTimestamp") or ev.get("stageTimestamp")),
                code=int((ev.get("responseStatus") or {}).get("code") or 0),
                detail=_detail(ref.get("resource", ""), ev.get("requestObject")),
                namespace=ref.get("namespace", ""),
                name=ref.get("name") or _name(ev.get("requestObject")),
                command=short_argv(ev.get("requestURI", ""))
                if ref.get("subresource") == "exec"
                else "",
                subject=_subject(ev.get("requestObject")),
            )

    def select(self, user: str, start: float, end: float) -> list[AuditRequest]:
        return [r for r in self.requests.values() if r.user == user and start <= r.t < end]


def fingerprint(arg: str) -> str:
    """How short_argv writes an argument longer than 80 characters (a script)."""
    return f"<sha1:{hashlib.sha1(arg.encode()).hexdigest()[:10]}>"


def short_argv(uri: str) -> str:
    """An exec's argv from its request URI (``command=`` parameters), scripts fingerprinted,
    so that thousands of logged execs keep no copy of the scripts they ran."""
    query = parse_qs(urlsplit(uri).query).get("command", [])
    return " ".join(arg if len(arg) <= 80 else fingerprint(arg) for arg in query)


def _name(obj: object) -> str:
    """A logged create's object name (its objectRef may not carry it)."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return str(meta.get("name") or "") if isinstance(meta, dict) else ""


def _subject(obj: object) -> str:
    """``Kind/name`` of what a logged Event is about; empty for anything else."""
    if not isinstance(obj, dict):
        return ""
    about = obj.get("involvedObject") or obj.get("regarding")
    if not isinstance(about, dict) or obj.get("kind") != "Event":
        return ""
    return f"{about.get('kind', '')}/{about.get('name', '')}"


def _detail(resource: str, obj: object) -> str:
    """What a logged write was for: an Event's reason, a patch's top-level fields."""
    if isinstance(obj, list):  # a JSON patch
        ops = [f"{o.get('op')} {o.get('path')}" for o in obj if isinstance(o, dict)]
        return "json-patch " + "; ".join(ops)[:120]
    if not isinstance(obj, dict):
        return ""
    if resource == "events":
        return f"Event {obj.get('reason', '?')}"
    parts = []
    meta = obj.get("metadata") or {}
    if isinstance(meta, dict):
        if "finalizers" in meta:
            parts.append("finalizers" if meta["finalizers"] else "finalizers removed")
        for key in sorted(meta.get("annotations") or {}):
            parts.append(f"annotation {key}")
    status = obj.get("status")
    if isinstance(status, dict):
        parts.append(f"status phase={status.get('phase')}")
    return ", ".join(parts) or "other: " + ",".join(sorted(obj))[:80]


def summarize(requests: Iterable[AuditRequest], sessions: int) -> dict[str, object]:
    reqs = list(requests)
    by_key: Counter[str] = Counter()
    by_client: Counter[str] = Counter()
    details: Counter[str] = Counter()
    for r in reqs:
        if r.detail:
            details[f"{r.verb} {r.resource}/{r.subresource}: {r.detail}".replace("/:", ":")] += 1
        by_key[f"{r.verb} {r.resource}{'/' + r.subresource if r.subresource else ''}"] += 1
        by_client[r.client] += 1
    writes = sum(1 for r in reqs if r.is_write)
    execs = sum(1 for r in reqs if r.is_exec)
    n = max(sessions, 1)
    return {
        "requests": len(reqs),
        "writes": writes,
        "execs": execs,
        "reads": len(reqs) - writes - execs,
        "conflicts_409": sum(1 for r in reqs if r.code == 409),
        "throttled_429": sum(1 for r in reqs if r.code == 429),
        "errors_5xx": sum(1 for r in reqs if r.code >= 500),
        "requests_per_session": round(len(reqs) / n, 2),
        "writes_per_session": round(writes / n, 2),
        "execs_per_session": round(execs / n, 2),
        "reads_per_session": round((len(reqs) - writes - execs) / n, 2),
        "by_verb_resource": dict(by_key.most_common()),
        "by_client": dict(by_client.most_common()),
        "write_details": dict(details.most_common()),
    }
