"""Tables and descriptions of Sessions (pure: objects and a clock in, text out).

Everything shown came from the cluster, where anyone who may write a Session's
status, an Event or a pod's output put it: control characters are stripped and
each field kept on its line (``sanitize.one_line``), so nothing reaches the
terminal as a command. ``-o json|yaml`` stays exact: both escape them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import yaml

from rdev_api import shards
from rdev_api.models import TERMINAL_PHASES
from rdev_api.names import PREVIEW_PORT, clone_url
from rdev_api.sanitize import one_line
from rdev_api.timing import human, idle_deadline, parse_time, time_left

LIST_COLUMNS = (
    "NAME",
    "PROJECT",
    "BRANCH",
    "PHASE",
    "WEB UI",
    "EXPIRES IN",
    "IDLE STOP IN",
    "AGE",
)


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj.get("spec") or {})


def _status(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj.get("status") or {})


def expiry_left(obj: dict[str, Any], now: datetime) -> str:
    """Time left to status.expiresAt; ``-`` once the session ended."""
    status = _status(obj)
    if status.get("phase") in TERMINAL_PHASES:
        return "-"
    return time_left(parse_time(status.get("expiresAt")), now)


def idle_left(obj: dict[str, Any], now: datetime) -> str:
    """Time left to the idle stop (lastActivityAt + idleTimeout); ``-`` without one."""
    status = _status(obj)
    if status.get("phase") in TERMINAL_PHASES:
        return "-"
    return time_left(
        idle_deadline(status.get("lastActivityAt"), _spec(obj).get("idleTimeout")), now
    )


def list_row(obj: dict[str, Any], now: datetime) -> list[str]:
    meta, spec, status = obj.get("metadata") or {}, _spec(obj), _status(obj)
    created = parse_time(meta.get("creationTimestamp"))
    return [
        str(meta.get("name", "")),
        str(spec.get("project", "")),
        str(status.get("branch") or spec.get("branch") or spec.get("newBranch") or ""),
        str(status.get("phase") or "Pending"),
        str(status.get("webUI") or ("Requested" if spec.get("webUI") else "Stopped")),
        expiry_left(obj, now),
        idle_left(obj, now),
        human(now - created) if created else "-",
    ]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded like kubectl's: three spaces between, no trailing blanks."""
    rows = [[one_line(cell) for cell in row] for row in rows]
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = []
    for row in (header, *rows):
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=True)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


def session_table(items: Sequence[dict[str, Any]], now: datetime) -> str:
    return table(LIST_COLUMNS, [list_row(obj, now) for obj in items])


def data(value: Any, fmt: str) -> str:
    """``-o json`` / ``-o yaml`` output."""
    if fmt == "json":
        return json.dumps(value, indent=2, sort_keys=False)
    return str(yaml.safe_dump(value, sort_keys=False, default_flow_style=False)).rstrip("\n")


def as_list(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Sessions as kubectl prints a list: a ``v1`` List of the objects."""
    return {"apiVersion": "v1", "kind": "List", "items": list(items)}


def _ago(text: str | None, now: datetime) -> str:
    when = parse_time(text)
    return f"{text} ({human(now - when)} ago)" if when else "-"


def _until(text: str | None, now: datetime) -> str:
    when = parse_time(text)
    if when is None:
        return "-"
    return f"{text} (in {human(when - now)})" if when > now else f"{text} (passed)"


def event_time(event: dict[str, Any]) -> str:
    return str(
        event.get("lastTimestamp")
        or (event.get("series") or {}).get("lastObservedTime")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def describe(
    obj: dict[str, Any], events: Sequence[dict[str, Any]], now: datetime, max_events: int = 20
) -> str:
    """``kubectl session describe``: the Session, its workspace, conditions and Events."""
    lines = [
        *_describe_session(obj, now),
        *_describe_lifetime(obj, now),
        *_describe_changes(_status(obj), now),
        *_describe_conditions(_status(obj), now),
        *_describe_events(events, now, max_events),
    ]
    return "\n".join(one_line(line) for line in lines)


def _describe_session(obj: dict[str, Any], now: datetime) -> list[str]:
    meta, spec, status = obj.get("metadata") or {}, _spec(obj), _status(obj)
    branch = spec.get("branch") or spec.get("newBranch") or ""
    if spec.get("newBranch"):
        branch += f" (new, from {spec.get('fromRef') or 'the default branch'})"
    lines = [
        f"Name:           {meta.get('name', '')}",
        f"Namespace:      {meta.get('namespace', '')}",
        f"Project:        {spec.get('project', '')}",
        f"Branch:         {branch}",
        f"Phase:          {status.get('phase') or 'Pending'}",
        f"Created:        {_ago(meta.get('creationTimestamp'), now)}",
    ]
    if status.get("createdBy"):
        lines.append(f"Created by:     {status['createdBy']}")
    if status.get("podName"):
        lines.append(f"Pod:            {status['podName']} (container {status.get('container')})")
    if status.get("checkoutPath"):
        commit = str(status.get("commit") or "")[:12]
        lines.append(
            f"Worktree:       {status['checkoutPath']}" + (f" at {commit}" if commit else "")
        )
    if status.get("cloneURL"):
        lines.append(f"Clone URL:      {status['cloneURL']}")
    if status.get("credentialSecret"):
        lines.append(f"Credential:     Secret {status['credentialSecret']} (key kubeconfig)")
    web = str(status.get("webUI") or "Stopped")
    if status.get("webUIRestarts"):
        web += f" (restarted {status['webUIRestarts']} times)"
    lines.append(f"Web UI:         {web}" + ("" if spec.get("webUI") else " (not requested)"))
    if status.get("previewURL"):
        lines.append(
            f"Preview:        {status['previewURL']}"
            f" (Service {status.get('serviceName')}, port {status.get('servicePort')})"
        )
    else:
        lines.append(f"Preview port:   {spec.get('previewPort', PREVIEW_PORT)}")
    return lines


def _describe_lifetime(obj: dict[str, Any], now: datetime) -> list[str]:
    """Expiry, idle stop, activity, the end and the review."""
    spec, status = _spec(obj), _status(obj)
    lines = [
        f"Expires in:     {spec.get('expiresIn', '24h')}",
        f"Expires at:     {_until(status.get('expiresAt'), now)}",
    ]
    if spec.get("idleTimeout"):
        idle = idle_deadline(status.get("lastActivityAt"), spec.get("idleTimeout"))
        stop = _until(idle.strftime("%Y-%m-%dT%H:%M:%SZ"), now) if idle else "-"
        lines.append(f"Idle timeout:   {spec['idleTimeout']} (idle stop at {stop})")
    if status.get("lastActivityAt"):
        lines.append(f"Last activity:  {_ago(status.get('lastActivityAt'), now)}")
    if status.get("expiresSoon"):
        lines.append("Expires soon:   yes")
    if status.get("endedAt"):
        lines.append(f"Ended:          {_ago(status.get('endedAt'), now)}")
    checkin = spec.get("checkin")
    if checkin is not None:
        flags = [k for k in ("skipReview", "autoMerge") if checkin.get(k)]
        lines.append("Checkin:        requested" + (f" ({', '.join(flags)})" if flags else ""))
    review = status.get("review")
    if review:
        parts = ["requested" if review.get("requested") else "not requested"]
        if review.get("autoMerge"):
            parts.append("auto-merge")
        if review.get("pushed") is not None:
            parts.append("pushed" if review.get("pushed") else "push failed")
        if review.get("branch"):
            parts.append(f"branch {review['branch']}")
        if review.get("commit"):
            parts.append(f"commit {str(review['commit'])[:12]}")
        lines.append(f"Review:         {', '.join(parts)}")
    return lines


def _describe_changes(status: dict[str, Any], now: datetime) -> list[str]:
    changes = status.get("changes")
    if not changes:
        return ["Workspace changes:", "  (not measured yet)"]
    return [
        "Workspace changes:",
        f"  Uncommitted files:  {changes.get('uncommittedFiles', 0)}",
        f"  Untracked files:    {changes.get('untrackedFiles', 0)}",
        f"  Unpushed commits:   {changes.get('unpushedCommits', 0)}",
        f"  Checked:            {_ago(changes.get('checkedAt'), now)}",
    ]


def _indented_table(head: Sequence[str], rows: list[list[str]], empty: str) -> list[str]:
    if not rows:
        return [f"  {empty}"]
    return ["  " + line for line in table(head, rows).splitlines()]


def _describe_conditions(status: dict[str, Any], now: datetime) -> list[str]:
    rows = [
        [
            str(c.get("type", "")),
            str(c.get("status", "")),
            str(c.get("reason", "")),
            _short_age(c.get("lastTransitionTime"), now),
            str(c.get("message", "")),
        ]
        for c in status.get("conditions") or []
    ]
    head = ("TYPE", "STATUS", "REASON", "SINCE", "MESSAGE")
    return ["Conditions:", *_indented_table(head, rows, "(none yet)")]


def _describe_events(events: Sequence[dict[str, Any]], now: datetime, max_events: int) -> list[str]:
    rows = [
        [
            _short_age(event_time(e), now),
            str(e.get("type", "")),
            str(e.get("reason", "")),
            str(e.get("count") or (e.get("series") or {}).get("count") or 1),
            str(e.get("message", "")),
        ]
        for e in sorted(events, key=event_time)[-max_events:]
    ]
    head = ("LAST SEEN", "TYPE", "REASON", "COUNT", "MESSAGE")
    return ["Events:", *_indented_table(head, rows, "(none)")]


def _short_age(text: str | None, now: datetime) -> str:
    when = parse_time(text)
    return human(now - when) if when else "-"


def next_commands(name: str, namespace: str, spec: dict[str, Any]) -> list[str]:
    """What to run next for a new Session, with its real names (printed by ``create``)."""
    where = f"{name} -n {namespace}"
    steps = [
        (f"kubectl session open {where}", "the web UI or the app preview"),
        (f"kubectl session clone {where}", f"git clone {clone_url(namespace, name)}"),
        (f"kubectl session exec {where} -- git status", "a command in its worktree"),
    ]
    if spec.get("credential") is True:
        steps.append(
            (
                f"kubectl session credential {where} -o {name}.kubeconfig",
                "a kubeconfig for this session only",
            )
        )
    width = max(len(command) for command, _ in steps)
    return ["Next:", *(f"  {command.ljust(width)}  # {why}" for command, why in steps)]


def shard_plan(weights: dict[str, int], count: int, cuts: Sequence[int]) -> dict[str, Any]:
    """The slices of the ring with the namespaces and Sessions each serves: as set now
    (``cuts``; empty: equal slices) and as ``shards.plan`` balances them."""
    planned = shards.plan(weights, count)
    total = sum(weights.values()) or 1

    def slices(chosen: Sequence[int]) -> list[dict[str, Any]]:
        points = shards.edges(count, chosen)
        return [
            {
                "shard": index,
                "from": shards.hex_bound(points[index]),
                "to": shards.hex_bound(points[index + 1]),
                "namespaces": spaces,
                "sessions": held,
                "share": round(100 * held / total, 1),
            }
            for index, (spaces, held) in enumerate(shards.tally(weights, count, chosen))
        ]

    return {
        "sessions": sum(weights.values()),
        "namespaces": len(weights),
        "shards": count,
        "now": slices(cuts),
        "planned": slices(planned),
        "boundaries": shards.format_cuts(planned),
    }


def shard_table(plan: dict[str, Any], cuts: Sequence[int]) -> str:
    head = ["", "SHARD", "FROM", "TO", "NAMESPACES", "SESSIONS", "SHARE"]
    rows: list[list[str]] = []
    for label, key in (("now" if cuts else "equal", "now"), ("planned", "planned")):
        for row in plan[key]:
            rows.append(
                [
                    label if row["shard"] == 0 else "",
                    str(row["shard"]),
                    row["from"],
                    row["to"],
                    str(row["namespaces"]),
                    str(row["sessions"]),
                    f"{row['share']}%",
                ]
            )
    lines = [
        f"{plan['sessions']} Sessions in {plan['namespaces']} namespaces, {plan['shards']} shards",
        table(head, rows),
    ]
    if plan["boundaries"]:
        lines.append(f"\nRDEV_SHARD_BOUNDARIES={plan['boundaries']}")
    else:
        lines.append("\nfewer namespaces than shards: keep equal slices")
    return "\n".join(lines)
