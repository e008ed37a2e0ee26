"""The floor: the fewest API requests a Session's life needs, from a plain async client.

It watches Sessions in its own namespace (one list + one watch, amortised over
all of them) and, for each, issues exactly:

create    PATCH finalizer; exec fetch, worktree add -b, rev-parse; APPLY Service;
          PATCH status (Active, Ready=True)
webUI on  exec start; APPLY Service (web UI port); PATCH status
webUI off exec stop; APPLY Service (preview port); PATCH status
checkin   exec changes; DELETE Service; PATCH status (Ended)
delete    exec worktree remove (+ run dir); PATCH finalizer away

i.e. 10 writes and 7 exec streams per Session. No pod label (the Service may
select the project label: one Active Session per project), no Events, no reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from kubeapi import Kube

Body = dict[str, Any]
GROUP, VERSION, PLURAL = "rdev.io", "v1alpha1", "sessions"
FINALIZER = "rdev.io/bench-floor"
WEBUI_PORT, PREVIEW_PORT = 3001, 8080
log = logging.getLogger("bench.floor")

_START = (
    'mkdir -p "$2"; cd "$1"; PORT="$3" nohup "${@:4}" >"$2/webui.log" 2>&1 </dev/null &'
    ' echo $! >"$2/webui.pid"'
)
_STOP = 'kill -TERM "$(cat "$1/webui.pid")" 2>/dev/null; rm -f "$1/webui.pid"'
_CHANGES = (
    'git -C "$1" status --porcelain=v1 -z --untracked-files=all;'
    ' printf "\\n--\\n"; git -C "$1" rev-list --count HEAD --not --remotes'
)
_REMOVE = 'git -C "$1" worktree remove -- "$2" && rm -rf -- "$3"'


@dataclass
class _Local:
    pod: str
    repo: str
    root: str
    phase: str = ""
    webui: bool = False
    finalized: bool = False


class Floor:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        pods: dict[str, Body],
        webui_cmd: list[str],
        workers: int = 16,
    ):
        self.kube = kube
        # As many Sessions in flight as the operator has reconcile workers (RDEV_WORKERS).
        self.workers = asyncio.Semaphore(workers)
        self.ns = namespace
        self.pods = pods  # project -> pod manifest (name and annotations)
        self.webui_cmd = webui_cmd
        self.local: dict[str, _Local] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self.latest: dict[str, Body] = {}
        self.errors: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._work: set[asyncio.Task[None]] = set()

    @property
    def path(self) -> str:
        return f"/apis/{GROUP}/{VERSION}/namespaces/{self.ns}/{PLURAL}"

    async def start(self) -> None:
        listing = await self.kube.request("GET", self.path)
        assert listing is not None
        for obj in listing.get("items", []):
            self._dispatch(obj)
        self._task = asyncio.create_task(self._watch(str(listing["metadata"]["resourceVersion"])))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        for task in [self._task, *self._work]:
            if task is None:
                continue
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _watch(self, rv: str) -> None:
        while True:
            try:
                async for event in self.kube.watch(self.path, rv):
                    obj = event.get("object") or {}
                    rv = obj.get("metadata", {}).get("resourceVersion", rv)
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        self._dispatch(obj)
            except (TimeoutError, OSError) as exc:
                log.warning("floor watch broke: %r", exc)
                await asyncio.sleep(0.2)

    def _dispatch(self, obj: Body) -> None:
        name = obj["metadata"]["name"]
        self.latest[name] = obj
        lock = self.locks.setdefault(name, asyncio.Lock())
        if lock.locked():
            return  # the running step re-checks the latest object when it is done
        task = asyncio.create_task(self._step(name))
        self._work.add(task)
        task.add_done_callback(self._work.discard)

    async def _step(self, name: str) -> None:
        async with self.locks[name]:
            while True:
                obj = self.latest.get(name)
                if obj is None:
                    return
                try:
                    async with self.workers:
                        acted = await self._act(name, obj)
                except Exception as exc:
                    self.errors.append(f"{name}: {exc!r}")
                    log.warning("floor step of %s failed: %r", name, exc)
                    return
                if not acted:
                    return

    async def _act(self, name: str, obj: Body) -> bool:
        """Do the one next step for this Session; False when nothing is left to do."""
        spec, meta = obj.get("spec") or {}, obj["metadata"]
        local = self.local.get(name)
        if local is None:
            pod = self.pods[spec["project"]]
            ann = pod["metadata"]["annotations"]
            local = _Local(
                pod=pod["metadata"]["name"],
                repo=ann["rdev.io/repo-path"],
                root=ann["rdev.io/worktree-root"],
            )
            self.local[name] = local
        path, run = f"{local.root}/{name}", f"{local.root}/.rdev/{name}"
        gen = meta.get("generation")
        if meta.get("deletionTimestamp"):
            if FINALIZER not in (meta.get("finalizers") or []) or local.phase == "Gone":
                return False
            await self._exec(local, ["sh", "-c", _REMOVE, "sh", local.repo, path, run])
            await self._patch(name, {"metadata": {"finalizers": None}})
            local.phase = "Gone"
            return False
        if not local.phase:
            await self._patch(name, {"metadata": {"finalizers": [FINALIZER]}})
            git = ["git", "-C", local.repo]
            await self._exec(local, [*git, "fetch", "--prune", "--quiet", "origin"])
            await self._exec(
                local,
                [*git, "worktree", "add", "--no-track", "-b", spec["newBranch"], "--", path,
                 "refs/remotes/origin/main"],
            )  # fmt: skip
            _, head, _ = await self._exec(local, ["git", "-C", path, "rev-parse", "HEAD"])
            await self._service(name, meta["uid"], spec["project"], PREVIEW_PORT)
            await self._status(
                name, gen, "Active", True, "Active", webUI="Stopped", servicePort=PREVIEW_PORT,
                podName=local.pod, checkoutPath=path, commit=head.strip(),
            )  # fmt: skip
            local.phase = "Active"
            return True
        if local.phase == "Active" and spec.get("checkin") is not None:
            await self._exec(local, ["sh", "-c", _CHANGES, "sh", path])
            await self.kube.request(
                "DELETE", f"/api/v1/namespaces/{self.ns}/services/{name}-preview", allow=(404,)
            )
            await self._status(name, gen, "Ended", False, "CheckedIn", webUI="Stopped")
            local.phase = "Ended"
            return True
        if local.phase == "Active" and bool(spec.get("webUI")) != local.webui:
            on = bool(spec.get("webUI"))
            if on:
                await self._exec(
                    local, ["bash", "-c", _START, "sh", path, run, str(WEBUI_PORT), *self.webui_cmd]
                )
            else:
                await self._exec(local, ["sh", "-c", _STOP, "sh", run])
            port = WEBUI_PORT if on else PREVIEW_PORT
            await self._service(name, meta["uid"], spec["project"], port)
            await self._status(
                name, gen, "Active", True, "Active",
                webUI="Running" if on else "Stopped", servicePort=port,
            )  # fmt: skip
            local.webui = on
            return True
        return False

    async def _exec(self, local: _Local, argv: list[str]) -> tuple[int, str, str]:
        rc, out, err = await self.kube.exec(self.ns, local.pod, argv, container="dev")
        if rc != 0:
            raise RuntimeError(f"{argv[:4]} exited {rc}: {err.strip()[:200]}")
        return rc, out, err

    async def _patch(self, name: str, patch: Body) -> None:
        await self.kube.request(
            "PATCH", f"{self.path}/{name}", patch, content_type="application/merge-patch+json"
        )

    async def _status(
        self, name: str, gen: int, phase: str, ready: bool, reason: str, **extra: Any
    ) -> None:
        cond = {
            "type": "Ready",
            "status": "True" if ready else "False",
            "reason": reason,
            "message": reason,
            "observedGeneration": gen,
        }
        status = {"phase": phase, "observedGeneration": gen, "conditions": [cond], **extra}
        await self.kube.request(
            "PATCH",
            f"{self.path}/{name}/status",
            {"status": status},
            content_type="application/merge-patch+json",
        )

    async def _service(self, name: str, uid: str, project: str, port: int) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": f"{name}-preview",
                "namespace": self.ns,
                "labels": {"rdev.io/session": name, "rdev.io/project": project},
                "ownerReferences": [
                    {
                        "apiVersion": f"{GROUP}/{VERSION}",
                        "kind": "Session",
                        "name": name,
                        "uid": uid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "type": "ClusterIP",
                "selector": {"rdev.io/project": project},
                "ports": [{"name": "preview", "protocol": "TCP", "port": port, "targetPort": port}],
            },
        }
        await self.kube.request(
            "PATCH",
            f"/api/v1/namespaces/{self.ns}/services/{name}-preview",
            body,
            params={"fieldManager": "rdev-floor", "force": "true"},
            content_type="application/apply-patch+yaml",
        )
