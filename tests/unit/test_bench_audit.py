"""bench/apistats.py reads what bench/shards.py attributes: an exec's argv (its scripts
fingerprinted), the object a request names, and the Session an Event is about."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

from benchload import bench_module

apistats = bench_module("apistats")

SCRIPT = "set -u\n" + "echo checkout\n" * 20


def record(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "stage": "ResponseComplete",
        "user": {"username": "system:serviceaccount:rdev-bench-shards:shard-1"},
        "userAgent": "rdev-session-operator-shard-1-of-4/python",
        "requestReceivedTimestamp": "2026-12-05T10:00:00.000000Z",
        "responseStatus": {"code": 201},
    }
    base.update(fields)
    return base


def test_an_exec_keeps_its_argv_with_each_script_as_a_fingerprint():
    query = urlencode(
        [("command", a) for a in ("sh", "-c", SCRIPT, "sh", "/repo")] + [("stdout", "true")]
    )
    argv = apistats.short_argv(f"/api/v1/namespaces/ns/pods/p0/exec?{query}")
    assert argv == f"sh -c {apistats.fingerprint(SCRIPT)} sh /repo"
    assert SCRIPT not in argv and len(apistats.fingerprint(SCRIPT)) < 20


def test_the_log_names_the_object_and_the_session_an_event_is_about(tmp_path: Path):
    query = urlencode([("command", a) for a in ("sh", "-c", SCRIPT)])
    lines = [
        record(
            auditID="1",
            verb="get",
            objectRef={"resource": "pods", "namespace": "ns", "name": "p0", "subresource": "exec"},
            requestURI=f"/api/v1/namespaces/ns/pods/p0/exec?{query}",
            responseStatus={"code": 101},
        ),
        record(
            auditID="2",
            verb="create",
            objectRef={"resource": "events", "namespace": "ns"},
            requestURI="/api/v1/namespaces/ns/events",
            requestObject={
                "kind": "Event",
                "metadata": {"name": "s1.abc"},
                "involvedObject": {"kind": "Session", "name": "s1"},
                "reason": "Active",
            },
        ),
        record(
            auditID="3",
            verb="create",
            objectRef={"resource": "services", "namespace": "ns"},
            requestURI="/api/v1/namespaces/ns/services",
            requestObject={"kind": "Service", "metadata": {"name": "s1-preview"}},
        ),
    ]
    path = tmp_path / "audit.log"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    log = apistats.AuditLog(path)
    log.read()
    exec_, event, service = (log.requests[i] for i in "123")
    assert exec_.is_exec and exec_.name == "p0" and exec_.namespace == "ns"
    assert exec_.command == f"sh -c {apistats.fingerprint(SCRIPT)}"
    assert (event.subject, event.name, event.detail) == ("Session/s1", "s1.abc", "Event Active")
    assert event.command == ""
    assert (service.name, service.subject) == ("s1-preview", "")
