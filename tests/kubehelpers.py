"""Helpers for tests that drive the real control plane."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from rdev_api import GROUP, PLURAL, VERSION

ROOT = Path(__file__).resolve().parents[1]
# What the operator image installs: the operator over the shared API, never the plugin.
IMAGE_PACKAGES = ("rdev_api", "session_operator")
T = TypeVar("T")


def wait_for(
    check: Callable[[], T | None], *, timeout: float = 30.0, interval: float = 0.1, what: str = ""
) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except ApiException as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what or check}: {last!r}"
            )
        time.sleep(interval)


def git(*args: str, cwd: Path) -> str:
    out = subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=60
    )
    return out.stdout.strip()


def make_repo(
    base: Path, branches: tuple[str, ...] = ("feature-a", "feature-b")
) -> dict[str, Path]:
    """A bare 'origin' plus a clone with a few branches, like a project pod's repository."""
    origin = base / "origin.git"
    seed = base / "seed"
    repo = base / "repo"
    sessions = base / "sessions"
    env_git = ["-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(seed)], check=True)
    (seed / "README.md").write_text("hello\n")
    git("add", "README.md", cwd=seed)
    git(*env_git, "commit", "-q", "-m", "initial", cwd=seed)
    for branch in branches:
        git("checkout", "-q", "-b", branch, cwd=seed)
        (seed / f"{branch}.txt").write_text(branch + "\n")
        git("add", ".", cwd=seed)
        git(*env_git, "commit", "-q", "-m", branch, cwd=seed)
        git("checkout", "-q", "main", cwd=seed)
    git("remote", "add", "origin", str(origin), cwd=seed)
    git("push", "-q", "origin", "--all", cwd=seed)
    subprocess.run(["git", "clone", "-q", str(origin), str(repo)], check=True)
    git("config", "user.email", "dev@example.com", cwd=repo)
    git("config", "user.name", "dev", cwd=repo)
    sessions.mkdir()
    return {"origin": origin, "repo": repo, "sessions": sessions, "base": base}


def create_project_pod(
    api: client.ApiClient,
    namespace: str,
    project: str,
    repo: dict[str, Path],
    *,
    name: str | None = None,
    wait: bool = True,
    annotations: dict[str, str] | None = None,
    extra_spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A pod that kwok runs, whose exec runs on this machine in the repository's folder."""
    name = name or f"{project}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(
        "kwok.x-k8s.io",
        "v1alpha1",
        namespace,
        "execs",
        {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "Exec",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"execs": [{"local": {"workDir": str(repo["repo"])}}]},
        },
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"rdev.io/project": project},
            "annotations": {
                "rdev.io/repo-path": str(repo["repo"]),
                "rdev.io/worktree-root": str(repo["sessions"]),
                **(annotations or {}),
            },
        },
        "spec": {
            "containers": [{"name": "dev", "image": "project:dev"}],
            "automountServiceAccountToken": False,
            **(extra_spec or {}),
        },
    }
    core.create_namespaced_pod(namespace, pod)
    if wait:
        wait_for(lambda: pod_ready(api, namespace, name), timeout=60, what=f"pod {name} Ready")
        # kwok loads Exec objects from a watch: until it has, exec runs elsewhere.
        workdir = str(repo["repo"].resolve())
        wait_for(
            lambda: exec_output(api, namespace, name, ["pwd", "-P"]).strip() == workdir,
            timeout=30,
            what=f"exec into {name} running in {workdir}",
        )
    return pod


def exec_output(api: client.ApiClient, namespace: str, pod: str, argv: list[str]) -> str:
    """stdout of an exec through the API server's pods/exec."""
    return str(
        stream(
            client.CoreV1Api(api).connect_get_namespaced_pod_exec,
            pod,
            namespace,
            command=argv,
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
        )
    )


def service_account_kubeconfig(
    api: client.ApiClient, kubeconfig: str, namespace: str, name: str, path: Path
) -> str:
    """A kubeconfig at ``path`` (mode 0600) for an hour's token of ServiceAccount ``name``,
    on the cluster of the admin ``kubeconfig``; the account must exist."""
    token = (
        client.CoreV1Api(api)
        .create_namespaced_service_account_token(
            name, namespace, {"spec": {"expirationSeconds": 3600}}
        )
        .status.token
    )
    admin = yaml.safe_load(Path(kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "rdev", "cluster": cluster["cluster"]}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": "rdev", "user": name}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return str(path)


def pod_ready(api: client.ApiClient, namespace: str, name: str) -> bool:
    pod = client.CoreV1Api(api).read_namespaced_pod(name, namespace)
    return pod.status.phase == "Running" and any(
        c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []
    )


def session_manifest(name: str, project: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Session",
        "metadata": {"name": name},
        "spec": {"project": project, **spec},
    }


def get_session(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return dict(
        client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
    )


def create_session(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(json.dumps(body))
    body["metadata"]["namespace"] = namespace
    return dict(
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body
        )
    )


def patch_session(
    api: client.ApiClient, namespace: str, name: str, spec: dict[str, Any]
) -> dict[str, Any]:
    return dict(
        client.CustomObjectsApi(api).patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, {"spec": spec}
        )
    )


def condition(session: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in (session.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    return None


def wait_condition(
    api: client.ApiClient,
    namespace: str,
    name: str,
    kind: str,
    status: str = "True",
    reason: str | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    seen: list[dict[str, Any]] = [{}]

    def check() -> dict[str, Any] | None:
        session = seen[0] = get_session(api, namespace, name)
        cond = condition(session, kind)
        if cond and cond["status"] == status and (reason is None or cond["reason"] == reason):
            return session
        return None

    with _saying_status(seen):
        return wait_for(check, timeout=timeout, what=f"{name} {kind}={status} {reason or ''}")


@contextlib.contextmanager
def _saying_status(seen: list[dict[str, Any]]) -> Iterator[None]:
    """A wait for a Session that times out says the status it saw last: why it is stuck."""
    try:
        yield
    except AssertionError as exc:
        status = seen[0].get("status") or {}
        found = status.get("conditions") or []
        conditions = [(c.get("type"), c.get("status"), c.get("reason")) for c in found]
        raise AssertionError(
            f"{exc}; last seen: phase {status.get('phase')!r}, conditions {conditions}"
        ) from None


def wait_phase(
    api: client.ApiClient, namespace: str, name: str, phase: str, timeout: float = 60.0
) -> dict[str, Any]:
    seen: list[dict[str, Any]] = [{}]

    def check() -> dict[str, Any] | None:
        session = seen[0] = get_session(api, namespace, name)
        return session if (session.get("status") or {}).get("phase") == phase else None

    with _saying_status(seen):
        return wait_for(check, timeout=timeout, what=f"{name} phase {phase}")


def events_for(api: client.ApiClient, namespace: str, name: str) -> list[Any]:
    events = client.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    )
    return list(events.items)


def wait_events(
    api: client.ApiClient,
    namespace: str,
    name: str,
    reason: str,
    *,
    match: Callable[[Any], bool] = lambda _: True,
    timeout: float = 30.0,
) -> list[Any]:
    """The Session's Events of ``reason``, once one matches: Events follow the status write."""
    return wait_for(
        lambda: [e for e in events_for(api, namespace, name) if e.reason == reason and match(e)],
        timeout=timeout,
        what=f"a {reason} Event on {name}",
    )


def kill_webuis(sessions_root: Path) -> None:
    """Stop every web UI process a test started (they outlive their exec)."""
    for pidfile in sessions_root.glob(".rdev/*/webui.pid"):
        with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
            os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def worktrees(repo: Path) -> list[str]:
    out = git("worktree", "list", "--porcelain", cwd=repo)
    return [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("worktree ")]


def reconciles(metrics_text: str) -> float:
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("rdev_reconcile_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def event_reasons(api: client.ApiClient, namespace: str, name: str) -> list[str]:
    return [e.reason for e in events_for(api, namespace, name)]


def install_crd(kubeconfig: str) -> None:
    """Apply the Session CRD and wait until the API server serves it."""
    crd = str(ROOT / "crds" / "sessions.rdev.io.yaml")
    kubectl = ["kubectl", "--kubeconfig", kubeconfig]
    subprocess.run(
        [*kubectl, "apply", "--server-side", "-f", crd], check=True, capture_output=True, timeout=60
    )
    subprocess.run(
        [*kubectl, "wait", "--for=condition=Established", "crd/sessions.rdev.io", "--timeout=60s"],
        check=True,
        capture_output=True,
        timeout=90,
    )


def gone(read: Callable[..., Any], *args: Any) -> bool:
    """Whether ``read(*args)`` answers 404: the object no longer exists."""
    try:
        read(*args)
    except ApiException as exc:
        return exc.status == 404
    return False


def delete_session(api: client.ApiClient, namespace: str, name: str) -> None:
    client.CustomObjectsApi(api).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )


def session_gone(api: client.ApiClient, namespace: str, name: str) -> bool:
    return gone(get_session, api, namespace, name)


def kubectl_run(
    kubeconfig: str,
    *args: str | Path,
    stdin: str | None = None,
    check: bool = True,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """kubectl against the test cluster; a failure raises with its stderr unless check=False."""
    out = subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and out.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(map(str, args))}: {out.stderr.strip()}")
    return out


def kubectl(
    kubeconfig: str, *args: str | Path, stdin: str | None = None, timeout: float = 180
) -> str:
    """kubectl's stdout; a failure raises with its stderr."""
    return kubectl_run(kubeconfig, *args, stdin=stdin, timeout=timeout).stdout


def kustomize(path: Path) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize`` renders from a folder; a failure raises with its stderr."""
    out = subprocess.run(
        ["kubectl", "kustomize", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    if out.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path}: {out.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


SINGLE_NAMESPACE = ROOT / "manifests" / "overlays" / "single-namespace"


def overlay_env(objects: list[dict[str, Any]], name: str) -> str | None:
    """An environment variable of the operator's Deployment in rendered manifests."""
    deploy = next(o for o in objects if o["kind"] == "Deployment")
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    return next((e.get("value") for e in container["env"] if e["name"] == name), None)


def namespaced_overlay(where: Path, namespaces: str) -> Path:
    """A copy of the single-namespace overlay set to serve ``namespaces``, as its comment
    tells a user to: only the RDEV_NAMESPACES value changes."""
    where.mkdir(parents=True, exist_ok=True)
    placeholder = overlay_env(kustomize(SINGLE_NAMESPACE), "RDEV_NAMESPACES")
    for src in SINGLE_NAMESPACE.iterdir():
        text = src.read_text()
        if src.name == "kustomization.yaml":
            # kustomize accepts only relative paths to other kustomizations.
            base = os.path.relpath(SINGLE_NAMESPACE.parent.parent / "base", where)
            text = text.replace("- ../../base\n", f"- {base}\n")
            text = text.replace(f"value: {placeholder}\n", f"value: {namespaces}\n")
        (where / src.name).write_text(text)
    return where


# The console script kubectl-session runs kubectl_session.cli:main, as this does
# (test_dockerfile checks the entry point), from the code under test.
PLUGIN = (sys.executable, "-m", "kubectl_session")


def ok(done: subprocess.CompletedProcess[str]) -> str:
    """The stdout of a command that must have succeeded (else its stderr in the failure)."""
    assert done.returncode == 0, f"{done.args}: rc={done.returncode} {done.stderr}"
    return done.stdout


def plugin(
    kubeconfig: str, *args: str, timeout: float = 120, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PLUGIN, *args],
        env={**os.environ, "KUBECONFIG": kubeconfig},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def scratch_namespace(api: client.ApiClient, name: str = "") -> Iterator[str]:
    """A namespace of its own, ready for Sessions; deleted afterwards, finalizers and all."""
    name = name or f"t-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    # Admission needs the default ServiceAccount, which the controller-manager makes.
    wait_for(
        lambda: core.read_namespaced_service_account("default", name),
        timeout=60,
        what="default ServiceAccount",
    )
    try:
        yield name
    finally:
        custom = client.CustomObjectsApi(api)
        for item in custom.list_namespaced_custom_object(GROUP, VERSION, name, PLURAL)["items"]:
            if item["metadata"].get("finalizers"):
                custom.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    name,
                    PLURAL,
                    item["metadata"]["name"],
                    {"metadata": {"finalizers": None}},
                )
        core.delete_namespace(name)


class Recorder:
    """Every version of every Session in the namespace, in the order the watch served them."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.versions: list[dict[str, Any]] = []
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the watch did not stop"

    def _run(self) -> None:
        rv = ""
        try:
            while not self._stop.is_set():
                kwargs: dict[str, Any] = {"timeout_seconds": 2}
                if rv:
                    kwargs["resource_version"] = rv
                for event in watch.Watch().stream(
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    **kwargs,
                ):
                    assert event["type"] != "ERROR", event["object"]
                    obj = event["object"]
                    rv = obj["metadata"]["resourceVersion"]
                    self.versions.append(obj)
        except BaseException as exc:
            self.failure = exc

    def of(self, name: str) -> list[dict[str, Any]]:
        return [v for v in self.versions if v["metadata"]["name"] == name]


def slow_checkout(repo: Path, seconds: float) -> None:
    """Every worktree placed from ``repo`` takes ``seconds`` more (a post-checkout hook)."""
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\nsleep {seconds}\n")
    hook.chmod(0o755)
