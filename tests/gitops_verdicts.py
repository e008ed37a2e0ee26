"""What GitOps tools say about a Session, asked of the real libraries.

- kstatus: ``status.Compute`` from sigs.k8s.io/cli-utils (what Flux, kpt and
  cli-utils wait with), through the Go probe hack/kstatus-probe.sh builds.
- Argo CD: manifests/components/argocd/session-health.lua in Lua 5.1 (Argo CD's
  gopher-lua speaks 5.1), with Argo CD's own rule first: an object being deleted
  is "Progressing: Pending deletion" before any health script runs.

The GitOps table of docs/operations.md (between the markers below) is what these say for
every reason; tests/unit/test_gitops_health.py generates it and compares, and
tests/integration/test_gitops_verdicts.py checks every state a live Session
passes through against it.
"""

from __future__ import annotations

import functools
import json
import subprocess
from collections.abc import Iterable
from typing import Any

from kubehelpers import ROOT

LUA_SCRIPT = ROOT / "manifests" / "components" / "argocd" / "session-health.lua"
GITOPS_DOC = ROOT / "docs" / "operations.md"
TABLE_BEGIN = "<!-- gitops-verdicts:begin (generated: tests/unit/test_gitops_health.py) -->"
TABLE_END = "<!-- gitops-verdicts:end -->"

# Rows of the table that no reason names.
NO_STATUS = "(no status yet)"
NOT_OBSERVED = "(spec changed, not yet observed)"
DELETING = "(any, being deleted)"


@functools.cache
def probe() -> str:
    """The kstatus probe's path; built once (cached across runs by the script)."""
    out = subprocess.run(
        ["bash", str(ROOT / "hack" / "kstatus-probe.sh"), "install"],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def kstatus(objects: Iterable[dict[str, Any]]) -> list[str]:
    """kstatus's verdict (Current, InProgress, Failed, Terminating, ...) for each object."""
    items = list(objects)
    out = subprocess.run(
        [probe()],
        input="\n".join(json.dumps(o) for o in items),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    verdicts = [json.loads(line)["status"] for line in out.stdout.splitlines()]
    assert len(verdicts) == len(items), out.stderr
    return verdicts


@functools.cache
def _lua() -> Any:
    from lupa import lua51

    return lua51.LuaRuntime(unpack_returned_tuples=True)


def _to_lua(lua: Any, value: Any) -> Any:
    """JSON to Lua as Argo CD passes it: objects and arrays become tables, null is nil."""
    if isinstance(value, dict):
        return lua.table_from({k: _to_lua(lua, v) for k, v in value.items() if v is not None})
    if isinstance(value, list):
        return lua.table_from([_to_lua(lua, v) for v in value])
    return value


def argocd(obj: dict[str, Any]) -> str:
    """Argo CD's health status for the Session."""
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return "Progressing"  # gitops-engine's GetResourceHealth, before any script
    lua = _lua()
    lua.globals().obj = _to_lua(lua, obj)
    result = lua.execute(LUA_SCRIPT.read_text())
    return str(result["status"])


def gitops_table() -> dict[str, tuple[str, str]]:
    """docs/operations.md's table: row key (a reason or a special row) -> (kstatus, Argo CD)."""
    text = GITOPS_DOC.read_text()
    body = text.split(TABLE_BEGIN, 1)[1].split(TABLE_END, 1)[0]
    rows: dict[str, tuple[str, str]] = {}
    for line in body.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0].strip("`")] = (cells[-2], cells[-1])
    return rows


def gitops_table_text() -> str:
    text = GITOPS_DOC.read_text()
    return text.split(TABLE_BEGIN, 1)[1].split(TABLE_END, 1)[0].strip()
