"""What a benchmark run needs in the cluster and on disk.

* identities: ServiceAccounts ``operator`` and ``floor`` in ``rdev-bench-system``
  (bound to cluster-admin), so the API server's audit log attributes every
  request, exec streams included, to the operator or to the floor client;
* a namespace per run and per client, with project pods that kwok runs; one
  ClusterExec maps every pod of those namespaces to this host, so exec runs the
  argv here (the operator passes absolute paths, so the work dir is irrelevant);
* one real git clone per project pod (copied from a template clone of a local
  bare "origin"): projects never share a repository, as in production.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from kubeapi import ApiError, Kube

SYSTEM_NS = "rdev-bench-system"
IDENTITIES = ("operator", "floor")
NODE = "kwok-node-0"
ROOT = Path(__file__).resolve().parents[1]


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
    out = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout


def install_crd(kubeconfig: Path) -> None:
    kubectl(
        kubeconfig, "apply", "--server-side", "-f", str(ROOT / "crds" / "sessions.rdev.io.yaml")
    )
    kubectl(
        kubeconfig,
        "wait",
        "--for=condition=Established",
        "crd/sessions.rdev.io",
        "--timeout=60s",
        timeout=90,
    )


def install_identities(kubeconfig: Path) -> None:
    docs = [f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {SYSTEM_NS}}}\n"]
    for ident in IDENTITIES:
        docs.append(
            f"apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {ident},"
            f" namespace: {SYSTEM_NS}}}\n"
        )
        docs.append(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
            f"metadata: {{name: rdev-bench-{ident}}}\n"
            "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole,"
            " name: cluster-admin}\n"
            f"subjects: [{{kind: ServiceAccount, name: {ident}, namespace: {SYSTEM_NS}}}]\n"
        )
    kubectl(kubeconfig, "apply", "--server-side", "-f", "-", stdin="---\n".join(docs))


SERVICE_CIDR = "10.128.0.0/16"


async def ensure_service_cidr(kube: Kube) -> None:
    """Room for thousands of ClusterIP Services.

    The API server's default --service-cluster-ip-range (10.0.0.0/24) holds 254
    ClusterIPs, and every Active Session has a preview Service: past ~250 the
    operator gets 500 "range is full". A ServiceCIDR object adds a range at run time.
    """
    path = "/apis/networking.k8s.io/v1/servicecidrs"
    body = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "ServiceCIDR",
        "metadata": {"name": "rdev-bench"},
        "spec": {"cidrs": [SERVICE_CIDR]},
    }
    await kube.request("POST", path, body, allow=(409,))
    for _ in range(100):
        obj = await kube.request("GET", f"{path}/rdev-bench")
        conds = (obj or {}).get("status", {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"ServiceCIDR {SERVICE_CIDR} not Ready after 20s")


async def token_for(
    kube: Kube, ident: str, seconds: int = 86400, namespace: str = SYSTEM_NS
) -> str:
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{ident}/token"
    body = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": seconds},
    }
    resp = await kube.request("POST", path, body)
    assert resp is not None
    return str(resp["status"]["token"])


def write_token_kubeconfig(dest: Path, kube: Kube, token: str, ident: str) -> Path:
    import base64

    import yaml

    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "bench",
                "cluster": {
                    "server": kube.server,
                    "certificate-authority-data": base64.b64encode(kube.ca_pem().encode()).decode(),
                },
            }
        ],
        "users": [{"name": ident, "user": {"token": token}}],
        "contexts": [{"name": ident, "context": {"cluster": "bench", "user": ident}}],
        "current-context": ident,
    }
    dest.write_text(yaml.safe_dump(cfg))
    dest.chmod(0o600)
    return dest


async def create_namespace(kube: Kube, name: str) -> None:
    await kube.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    # Admission needs the default ServiceAccount, which the controller-manager makes.
    for _ in range(600):
        sa = await kube.request(
            "GET", f"/api/v1/namespaces/{name}/serviceaccounts/default", allow=(404,)
        )
        if sa is not None:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"no default ServiceAccount in {name} after 60s")


async def install_cluster_exec(kube: Kube, name: str, namespaces: list[str], workdir: Path) -> None:
    body = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ClusterExec",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchNamespaces": namespaces},
            "execs": [{"local": {"workDir": str(workdir)}}],
        },
    }
    await kube.request("POST", "/apis/kwok.x-k8s.io/v1alpha1/clusterexecs", body)


def _git(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=60)


def make_template(base: Path) -> Path:
    """A bare origin with main and a clone of it, without hooks: the per-pod template."""
    origin, seed, template = base / "origin.git", base / "seed", base / "template"
    ident = ["-c", "user.email=bench@example.com", "-c", "user.name=bench"]
    _git("init", "-q", "--bare", "-b", "main", str(origin))
    _git("init", "-q", "-b", "main", str(seed))
    for i in range(20):
        (seed / f"file{i:02d}.txt").write_text(f"line {i}\n" * 20)
    _git("add", ".", cwd=seed)
    _git(*ident, "commit", "-q", "-m", "initial", cwd=seed)
    _git("remote", "add", "origin", str(origin), cwd=seed)
    _git("push", "-q", "origin", "main", cwd=seed)
    _git("clone", "-q", "--template=", str(origin), str(template))
    for key, value in (
        ("gc.auto", "0"),
        ("maintenance.auto", "false"),
        ("user.email", "dev@example.com"),
        ("user.name", "dev"),
    ):
        _git("config", key, value, cwd=template)
    return template


def make_repo(template: Path, dest: Path, *, link: bool = False) -> dict[str, str]:
    """A project's clone (a copy of the template) and its worktree root.

    ``link`` hard-links the files instead of copying them (thousands of pods): git
    replaces a file through a lock file and a rename, never writes one in place, so
    the clones stay independent."""
    copy = os.link if link else shutil.copy2
    shutil.copytree(template, dest / "repo", symlinks=True, copy_function=copy)
    (dest / "sessions").mkdir(parents=True)
    return {"repo": str(dest / "repo"), "sessions": str(dest / "sessions")}


def pod_manifest(name: str, project: str | None, paths: dict[str, str]) -> dict[str, Any]:
    labels = {"rdev.io/project": project} if project else {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                "rdev.io/repo-path": paths["repo"],
                "rdev.io/worktree-root": paths["sessions"],
            },
        },
        "spec": {
            # Bound to the kwok node directly: the scheduler is not what is measured.
            "nodeName": NODE,
            "containers": [{"name": "dev", "image": "project:dev"}],
            "automountServiceAccountToken": False,
        },
    }


async def create_pods(
    kube: Kube, namespace: str, pods: list[dict[str, Any]], concurrency: int = 32
) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(pod: dict[str, Any]) -> None:
        async with sem:
            await kube.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod)

    await asyncio.gather(*(one(p) for p in pods))


def _pod_ready(pod: dict[str, Any]) -> bool:
    st = pod.get("status") or {}
    return st.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or []
    )


async def wait_pods_ready(kube: Kube, namespace: str, count: int, timeout: float) -> float:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        listing = await kube.request("GET", f"/api/v1/namespaces/{namespace}/pods")
        assert listing is not None
        ready = sum(1 for p in listing["items"] if _pod_ready(p))
        if ready >= count:
            return float(ready)
        if loop.time() > deadline:
            raise RuntimeError(f"only {ready}/{count} pods Ready in {namespace} after {timeout}s")
        await asyncio.sleep(1.0)


async def delete_namespace(kube: Kube, name: str) -> None:
    """Drop finalizers of leftover Sessions (no operator runs now) and delete the namespace."""
    path = f"/apis/rdev.io/v1alpha1/namespaces/{name}/sessions"
    try:
        listing = await kube.request("GET", path, allow=(404,))
    except ApiError:
        listing = None
    sem = asyncio.Semaphore(32)

    async def strip(item: dict[str, Any]) -> None:
        async with sem:
            await kube.request(
                "PATCH",
                f"{path}/{item['metadata']['name']}",
                {"metadata": {"finalizers": None}},
                content_type="application/merge-patch+json",
                allow=(404,),
            )

    items = [i for i in (listing or {}).get("items", []) if i["metadata"].get("finalizers")]
    await asyncio.gather(*(strip(i) for i in items))
    await kube.request("DELETE", f"/api/v1/namespaces/{name}", allow=(404,))


def kill_webuis(workdir: Path) -> int:
    """Stop every web UI process the run started (they outlive their exec)."""
    killed = 0
    for pidfile in workdir.glob("pods/*/sessions/.rdev/*/webui.pid"):
        try:
            os.kill(int(pidfile.read_text().strip()), 9)
            killed += 1
        except (ValueError, ProcessLookupError, PermissionError, FileNotFoundError):
            pass
    return killed
