"""The floor: every write the Session contract requires, in the fewest API requests.

It watches Sessions in its own namespace (one list + one watch, amortised over
all of them) and, for each, issues exactly:

create    PATCH finalizer; exec (fetch + worktree add -b + rev-parse, one script);
          PATCH pod label rdev.io/session=<name>; APPLY Service (selects that label);
          PATCH status (Active, Ready=True); POST Event (CheckedOut; ServiceCreated)
webUI on  exec start; POST NetworkPolicy (web UI port closed); APPLY Service (web UI
          port); PATCH status; POST Event
webUI off exec stop; DELETE NetworkPolicy (UID precondition); APPLY Service (preview
          port); PATCH status; POST Event
checkin   exec (changes + push for review, one script); DELETE Service;
          PATCH pod label away; PATCH status (Ended, review); POST Event
delete    exec worktree remove (+ run dir); POST Event (WorktreeRemoved);
          PATCH finalizer away

i.e. 19 writes and 5 exec streams per Session, no reads. The Events are the
ones the operator posts on this path: one per step, the Normal Events of a step
merged into one, as ``context.post_events`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubeapi import Kube
from rdev_api import Body
from rdev_api.names import PREVIEW_PORT, PROJECT_LABEL, SESSION_LABEL, WEBUI_PORT
from session_operator.builders import webui_network_policy

GROUP, VERSION, PLURAL = "rdev.io", "v1alpha1", "sessions"
FINALIZER = "rdev.io/bench-floor"
COMPONENT = "rdev-bench-floor"
log = logging.getLogger("bench.floor")

_CHECKOUT = (
    'git -C "$1" fetch --prune --quiet origin'
    ' && git -C "$1" worktree add --quiet --no-track -b "$3" -- "$2" refs/remotes/origin/main'
    ' && git -C "$2" rev-parse --verify HEAD'
)
_START = (
    'mkdir -p "$2"; cd "$1"; PORT="$3" nohup "${@:4}" >"$2/webui.log" 2>&1 </dev/null &'
    ' echo $! >"$2/webui.pid"'
)
_STOP = 'kill -TERM "$(cat "$1/webui.pid")" 2>/dev/null; rm -f "$1/webui.pid"'
_CHECKIN = (
    'git -C "$1" status --porcelain=v1 -z --untracked-files=all;'
    ' printf "\\n--\\n"; git -C "$1" rev-list --count HEAD --not --remotes;'
    ' git -C "$1" rev-parse --verify HEAD'
    ' && git -c core.pager=cat -C "$1" push --quiet origin "HEAD:refs/heads/$2" </dev/null'
)
_REMOVE = 'git -C "$1" worktree remove -- "$2" && rm -rf -- "$3"'


@dataclass
class _Local:
    pod: str
    repo: str
    root: str
    phase: str = ""
    webui: bool = False
    policy_uid: str = ""  # the web UI's NetworkPolicy, while it runs
    branch: str = ""
    commit: str = ""


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
        await self.kube.close()

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
            await self._event(obj, "WorktreeRemoved", f"worktree {path} removed")
            await self._patch(name, {"metadata": {"finalizers": None}})
            local.phase = "Gone"
            return False
        if not local.phase:
            await self._patch(name, {"metadata": {"finalizers": [FINALIZER]}})
            branch = spec["newBranch"]
            _, out, _ = await self._exec(
                local, ["sh", "-c", _CHECKOUT, "sh", local.repo, path, branch]
            )
            local.branch, local.commit = branch, out.strip().splitlines()[-1]
            await self._label(local, name)
            await self._service(name, meta["uid"], spec["project"], PREVIEW_PORT)
            await self._status(
                name, gen, "Active", True, "Active", webUI="Stopped", servicePort=PREVIEW_PORT,
                podName=local.pod, checkoutPath=path, branch=branch, commit=local.commit,
            )  # fmt: skip
            await self._event(
                obj,
                "ServiceCreated",
                f"branch {branch} checked out at {path}; preview Service {name}-preview created",
            )
            local.phase = "Active"
            return True
        if local.phase == "Active" and spec.get("checkin") is not None:
            _, out, _ = await self._exec(local, ["sh", "-c", _CHECKIN, "sh", path, local.branch])
            await self.kube.request(
                "DELETE", f"/api/v1/namespaces/{self.ns}/services/{name}-preview", allow=(404,)
            )
            await self._label(local, None)
            review = {
                "requested": True,
                "autoMerge": False,
                "pushed": True,
                "commit": out.strip().splitlines()[-1],
                "branch": local.branch,
            }
            await self._status(
                name, gen, "Ended", False, "CheckedIn", webUI="Stopped", review=review,
                servicePort=None,
            )  # fmt: skip
            await self._event(
                obj,
                "CheckedIn",
                f"branch {local.branch} pushed to origin for review; checked in; the worktree"
                " and branch are kept",
            )
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
            await self._policy(local, name, meta["uid"], spec["project"], on)
            port = WEBUI_PORT if on else PREVIEW_PORT
            await self._service(name, meta["uid"], spec["project"], port)
            await self._status(
                name, gen, "Active", True, "Active",
                webUI="Running" if on else "Stopped", servicePort=port,
            )  # fmt: skip
            await self._event(
                obj,
                "ServiceUpdated",
                f"web UI {'started' if on else 'stopped'}; preview Service now on port {port}",
            )
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

    async def _label(self, local: _Local, session: str | None) -> None:
        """The pod's rdev.io/session label: the preview Service's selector (None removes it)."""
        await self.kube.request(
            "PATCH",
            f"/api/v1/namespaces/{self.ns}/pods/{local.pod}",
            {"metadata": {"labels": {SESSION_LABEL: session}}},
            content_type="application/merge-patch+json",
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

    async def _event(self, session: Body, reason: str, message: str) -> None:
        """One Normal Event per step, shaped like the operator's."""
        meta, now = session["metadata"], _stamp()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}", "namespace": self.ns},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Session",
                "name": meta["name"],
                "namespace": self.ns,
                "uid": meta.get("uid"),
            },
            "type": "Normal",
            "reason": reason,
            "message": message,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": COMPONENT,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        await self.kube.request("POST", f"/api/v1/namespaces/{self.ns}/events", body)

    async def _policy(self, local: _Local, name: str, uid: str, project: str, on: bool) -> None:
        """The web UI's NetworkPolicy, as the operator makes it; deleted by its UID."""
        base = f"/apis/networking.k8s.io/v1/namespaces/{self.ns}/networkpolicies"
        if on:
            body = webui_network_policy(
                session=name,
                namespace=self.ns,
                uid=uid,
                project=project,
                feature=None,
                port=WEBUI_PORT,
                allowed_from=[],
            )
            created = await self.kube.request("POST", base, body)
            assert created is not None
            local.policy_uid = created["metadata"]["uid"]
        else:
            await self.kube.request(
                "DELETE",
                f"{base}/{name}-webui",
                {"preconditions": {"uid": local.policy_uid}},
                allow=(404,),
            )
            local.policy_uid = ""

    async def _service(self, name: str, uid: str, project: str, port: int) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": f"{name}-preview",
                "namespace": self.ns,
                "labels": {
                    SESSION_LABEL: name,
                    PROJECT_LABEL: project,
                    "app.kubernetes.io/managed-by": COMPONENT,
                },
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
                "selector": {SESSION_LABEL: name},
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


class FloorThread:
    """The floor on its own thread and event loop, so its CPU time is its own.

    The benchmark's client (creates, patches, the watch that stamps latencies)
    shares the main loop; the floor's thread CPU clock counts the floor alone,
    as the operator's /proc counters count the operator alone.
    """

    def __init__(self, floor: Floor):
        import threading

        self.floor = floor
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="floor", daemon=True)
        self.thread.start()

    async def _call(self, coro: Any) -> Any:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def start(self) -> None:
        await self._call(self.floor.start())

    def cpu_s(self) -> float:
        """CPU seconds the floor's thread has used."""
        import time

        ident = self.thread.ident
        assert ident is not None
        return time.clock_gettime(time.pthread_getcpuclockid(ident))

    async def stop(self) -> None:
        if not self.thread.is_alive():
            return
        await self._call(self.floor.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self.thread.join, 10)
        if not self.thread.is_alive():
            self.loop.close()
