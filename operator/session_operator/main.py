"""The operator's entry: parse settings, configure kopf, run it (wiring only).

Everything that touches the cluster happens in kopf's start-up handler, on its
event loop, never at import.
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import logging
import os
import random
import sys
import time
from collections.abc import Callable
from typing import Any

import kopf
from prometheus_client import start_http_server

from rdev_api import FINALIZER

from . import (
    handlers,  # noqa: F401  (importing registers the handlers)
    shards,
)
from .app import App, ShardingRefused, check_server_shards
from .informer import POD_SELECTOR, SERVICE_SELECTOR
from .kopfstate import MemoryProgressStorage, NoDiffBase
from .kube import LIST_PAGE, login
from .settings import Settings, SettingsError, load_settings, unknown_variables

log = logging.getLogger("session_operator")
KOPF_IDLE_S = 1.0  # kopf's default is 5 s


def configure_kopf(settings: Settings, kopf_settings: kopf.OperatorSettings) -> None:
    """Our names under rdev.io, server-side filters, peering for HA."""
    kopf_settings.persistence.finalizer = FINALIZER
    kopf_settings.persistence.progress_storage = MemoryProgressStorage(prefix="rdev.io")
    kopf_settings.persistence.diffbase_storage = NoDiffBase()
    # Server-side filters: watch only project pods and our own Services.
    kopf_settings.watching.label_selectors[_core("pods")] = POD_SELECTOR
    kopf_settings.watching.label_selectors[_core("services")] = SERVICE_SELECTOR
    selector = shards.shard_selector(settings.shard_index, settings.shards)
    if selector:
        # Every namespaced kind kopf watches, from this shard's namespaces only (the
        # peering objects are cluster-scoped and shared by the shards' replicas).
        kopf_settings.watching.shard_selectors[_namespaced] = selector
    # kopf's own start-up LIST in pages too (kube.LIST_PAGE), not one answer of everything.
    kopf_settings.watching.chunk_size = LIST_PAGE
    # kopf runs a task per object while its events come, kept KOPF_IDLE_S after the
    # last: at start-up that is one per object listed, all at once.
    kopf_settings.queueing.idle_timeout = KOPF_IDLE_S
    kopf_settings.peering.clusterwide = True
    kopf_settings.peering.lifetime = max(int(settings.peering_lifetime.total_seconds()), 15)
    kopf_settings.peering.stealth = True
    kopf_settings.posting.level = logging.WARNING


def _namespaced(resource: Any) -> bool:
    return bool(resource.namespaced) and resource.group != "kopf.dev"


@dataclasses.dataclass(frozen=True, kw_only=True)
class IdentifiedConnection(kopf.ConnectionInfo):  # type: ignore[misc]
    """kopf's credentials plus a User-Agent, so kopf's own requests name the shard too."""

    user_agent: str = ""

    def as_http_headers(self) -> dict[str, str]:
        headers: dict[str, str] = super().as_http_headers()
        if self.user_agent:
            headers["User-Agent"] = self.user_agent
        return headers


def identified(info: Any, user_agent: str) -> Any:
    """``info`` with ``user_agent`` added; unchanged without one or for other credentials."""
    if not user_agent or not isinstance(info, kopf.ConnectionInfo):
        return info
    fields = {f.name: getattr(info, f.name) for f in dataclasses.fields(info)}
    return IdentifiedConnection(**fields, user_agent=user_agent)


def _core(plural: str) -> Callable[[Any], bool]:
    return lambda res: bool(res.group == "" and res.plural == plural)


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's per-thread malloc arenas before any thread starts.

    Reconciles run on the event loop, but a few threads remain (the metrics
    endpoint, DNS lookups in aiohttp's executor); each thread that allocates
    would otherwise get an arena of its own (up to eight per core), and freed
    memory stays fragmented across them. Same effect as MALLOC_ARENA_MAX; a
    no-op where libc is not glibc.
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
    for name, nearest in unknown_variables(os.environ):
        hint = f"; did you mean {nearest}?" if nearest else ""
        log.warning("%s is not a setting and is ignored%s", name, hint)
    priority = settings.priority or _age_priority()
    peering = shards.peering_name(settings.peering, settings.shard_index, settings.shards)
    user_agent = shards.user_agent(settings.shard_index, settings.shards)
    if settings.shards > 1:
        try:
            asyncio.run(check_server_shards(settings))
        except ShardingRefused as exc:
            print(exc, file=sys.stderr)
            return 3

    @kopf.on.startup()
    async def _startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        configure_kopf(operator_settings, settings)
        app = await App.create(operator_settings, priority if operator_settings.peering else None)
        progress = settings.persistence.progress_storage
        if isinstance(progress, MemoryProgressStorage):
            app.informer.on_session_gone = progress.forget
        memo.app = app
        await app.start(operator_settings.namespaces, peering)

    @kopf.on.cleanup()
    async def _cleanup(memo: kopf.Memo, **_: Any) -> None:
        app = getattr(memo, "app", None)
        if app is not None:
            await app.stop()

    @kopf.on.login()
    async def _login(**kwargs: Any) -> Any:
        # The operator's own login (kube.login): kopf and the operator are one identity.
        return identified(login(), user_agent)

    operator_settings = settings
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    log.info(
        "starting: namespaces=%s shard=%d/%d peering=%s priority=%d",
        ",".join(settings.namespaces) or "*",
        settings.shard_index,
        settings.shards,
        peering or "standalone",
        priority,
    )
    liveness = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    kopf.run(
        clusterwide=not settings.namespaces,
        namespaces=list(settings.namespaces),
        standalone=not peering,
        peering_name=peering or None,
        priority=priority,
        liveness_endpoint=liveness,
        memo=kopf.Memo(),
    )
    return 0


def _age_priority() -> int:
    """Older instances rank higher, so a newcomer never takes over a working one."""
    return (4_000_000_000 - int(time.time())) * 1000 + random.randrange(1000)  # noqa: S311
