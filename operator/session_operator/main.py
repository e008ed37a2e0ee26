"""The operator's entry: parse settings, configure kopf, run it (wiring only).

kopf is the runtime: the event loop, login, peering (who acts), the liveness
endpoint, start-up and clean-up. It watches no resource for the operator: the
App's informer does (informer.py). Everything that touches the cluster happens
in kopf's start-up handler, on its event loop, never at import.
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
from typing import Any

import kopf
from prometheus_client import start_http_server

from rdev_api import shards

from .app import App, ShardingRefused, check_server_shards
from .kube import login
from .settings import Settings, SettingsError, load_settings, unknown_variables

log = logging.getLogger("session_operator")


def configure_kopf(settings: Settings, kopf_settings: kopf.OperatorSettings) -> None:
    """Peering for HA under our own names; kopf's own Events only for its warnings."""
    kopf_settings.peering.clusterwide = True
    kopf_settings.peering.lifetime = max(int(settings.peering_lifetime.total_seconds()), 15)
    kopf_settings.peering.stealth = True
    kopf_settings.posting.level = logging.WARNING


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
        "starting: namespaces=%s shard=%d/%d range=[%s, %s) peering=%s priority=%d",
        ",".join(settings.namespaces) or "*",
        settings.shard_index,
        settings.shards,
        *map(shards.hex_bound, settings.shard_range),
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
