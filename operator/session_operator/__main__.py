"""``python -m session_operator``: parse settings, wire the runtime, run kopf.

Everything that touches the cluster happens here at start, never at import.
"""

from __future__ import annotations

import ctypes
import logging
import random
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException
from prometheus_client import start_http_server

from . import handlers
from .builders import MANAGED_BY_LABEL, MANAGER, PROJECT_LABEL
from .cache import ObjectCache
from .kube import Kube, load_kube_config
from .podexec import PodExec
from .reconcile import Reconciler
from .settings import Settings, SettingsError, load_settings

log = logging.getLogger("session_operator")


class NoDiffBase(kopf.DiffBaseStorage):  # type: ignore[misc]
    """Keep no diff base: the operator reacts to generations, not to field diffs.

    kopf's default stores the last handled spec in an annotation, which costs a
    write at creation and on every spec change, and a deep copy of the object on
    every watch event; nothing here needs either. Deletion is still detected
    from deletionTimestamp, and daemons do not depend on diffs.
    """

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        return {}

    def fetch(self, *, body: Any) -> Any:
        return {}

    def store(self, *, body: Any, patch: Any, essence: Any) -> None:
        return None


def configure_kopf(settings: Settings, kopf_settings: kopf.OperatorSettings) -> None:
    """Our names under rdev.io, server-side filters, peering for HA."""
    kopf_settings.persistence.finalizer = "rdev.io/finalizer"
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="rdev.io")
    kopf_settings.persistence.diffbase_storage = NoDiffBase()
    kopf_settings.execution.max_workers = settings.workers
    # Server-side filters: watch only project pods and our own Services.
    kopf_settings.watching.label_selectors[_core("pods")] = PROJECT_LABEL
    kopf_settings.watching.label_selectors[_core("services")] = f"{MANAGED_BY_LABEL}={MANAGER}"
    kopf_settings.peering.clusterwide = True
    kopf_settings.peering.lifetime = max(int(settings.peering_lifetime.total_seconds()), 15)
    kopf_settings.peering.stealth = True
    kopf_settings.posting.level = logging.WARNING


def _core(plural: str) -> Callable[[Any], bool]:
    return lambda res: bool(res.group == "" and res.plural == plural)


def build_runtime(settings: Settings) -> handlers.Runtime:
    cfg = load_kube_config()
    kube = Kube(cfg, pool_size=settings.workers + 4)
    sessions = ObjectCache.for_sessions()
    pods = ObjectCache.for_pods()
    services = ObjectCache.for_services()
    execs = PodExec(kube.new_api_client, timeout_s=settings.exec_timeout.total_seconds())
    reconciler = Reconciler(settings, kube, execs, sessions, pods, services)
    return handlers.Runtime(
        reconciler=reconciler,
        executor=ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="reconcile"),
        delete_retries=settings.delete_retries,
        retry_base_s=settings.retry_interval.total_seconds(),
        sessions=sessions,
        pods=pods,
        services=services,
    )


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's per-thread malloc arenas before any worker thread starts.

    Each thread that allocates otherwise gets an arena of its own (up to eight
    per core), and freed memory stays fragmented across them: with a pool of
    reconcile threads that is most of the operator's idle RSS. Same effect as
    MALLOC_ARENA_MAX; a no-op where libc is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    limit_malloc_arenas()
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc.code, file=sys.stderr)
        return 2
    kopf.configure(
        verbose=settings.log_level == "DEBUG",
        log_format=kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL,
    )
    logging.getLogger().setLevel(settings.log_level)
    if settings.log_level != "DEBUG":
        # kopf logs every watch-event handler call as "succeeded" at INFO: noise
        # that costs CPU at scale. Warnings and errors still show.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    handlers.RUNTIME = build_runtime(settings)
    handlers.register_phase_gauge(handlers.RUNTIME)

    @kopf.on.startup()
    def _startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure_kopf(operator_settings, settings)
        # Fill the caches before any daemon reconciles: a resumed Session must see
        # its pod, its Service and its project's queue, or it would flap to Pending.
        runtime = handlers.runtime()
        if operator_settings.peering:
            ensure_peering(runtime, operator_settings.peering)
        counts = runtime.prime(operator_settings.namespaces)
        log.info("caches primed: %s", counts)

    operator_settings = settings
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    priority = settings.priority or _age_priority()
    log.info(
        "starting: namespaces=%s peering=%s priority=%d",
        ",".join(settings.namespaces) or "*",
        settings.peering or "standalone",
        priority,
    )
    liveness = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    kopf.run(
        clusterwide=not settings.namespaces,
        namespaces=list(settings.namespaces),
        standalone=not settings.peering,
        peering_name=settings.peering or None,
        priority=priority,
        liveness_endpoint=liveness,
    )
    return 0


def ensure_peering(runtime: handlers.Runtime, name: str) -> None:
    """Create the ClusterKopfPeering the replicas share, so one `kubectl apply -k` suffices.

    A custom object cannot be applied in the same pass that installs its CRD,
    so the install ships the CRD and the operator makes the object itself.
    """
    kube = runtime.reconciler.kube
    if not isinstance(kube, Kube):
        return
    body = {
        "apiVersion": "kopf.dev/v1",
        "kind": "ClusterKopfPeering",
        "metadata": {"name": name},
    }
    try:
        kube.custom.create_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", body)
        log.info("created ClusterKopfPeering %s", name)
    except ApiException as exc:
        if exc.status == 409:
            return
        if exc.status == 404:
            raise kopf.TemporaryError(
                "the kopf peering CRDs are not installed yet", delay=5
            ) from exc
        raise


def _age_priority() -> int:
    """Older instances rank higher, so a newcomer never takes over a working one."""
    return (4_000_000_000 - int(time.time())) * 1000 + random.randrange(1000)  # noqa: S311


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
