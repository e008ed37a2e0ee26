"""The user's connection to the API server, as kubectl makes it.

``--kubeconfig`` (else ``KUBECONFIG``, else ``~/.kube/config``) and ``--context``
pick the cluster and credentials; ``-n`` else the context's namespace else
``default`` picks the namespace. Every failure becomes a ``PluginError`` with a
message a person can act on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError

from rdev_api import GROUP, PLURAL, VERSION

# Parts of the client without type annotations.
_config: Any = config
_watch: Any = watch


class PluginError(Exception):
    """A failure to report on stderr with exit code 1.

    ``status``: the API server's HTTP status when it refused the request.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Target:
    api: client.ApiClient
    namespace: str
    kubeconfig: str | None
    context: str | None

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def fresh_client(self) -> client.ApiClient:
        """A client of its own (streams swap methods on their client while connecting)."""
        return client.ApiClient(self.api.configuration)


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Target:
    try:
        cfg = client.Configuration()
        _config.load_kube_config(
            config_file=kubeconfig, context=context, client_configuration=cfg, persist_config=False
        )
        if namespace is None:
            contexts, active = _config.list_kube_config_contexts(config_file=kubeconfig)
            chosen = active
            if context is not None:
                chosen = next((c for c in contexts if c.get("name") == context), active)
            namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
    except (ConfigException, OSError) as exc:
        raise PluginError(f"cannot load the kubeconfig: {exc}") from None
    return Target(client.ApiClient(cfg), namespace, kubeconfig, context)


def api_error(exc: ApiException, what: str) -> PluginError:
    """The API server's own message (its Status), prefixed with what was attempted."""
    message = exc.reason or ""
    try:
        body = json.loads(exc.body or "")
        message = body.get("message") or message
    except (TypeError, ValueError):
        if exc.body:
            message = str(exc.body)[:500]
    if exc.status == 0:
        return PluginError(f"{what}: cannot reach the API server: {message}")
    return PluginError(f"{what}: {message} ({exc.status})", exc.status)


def call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run an API call, turning client and transport errors into PluginError."""
    try:
        return fn(*args, **kwargs)
    except ApiException as exc:
        raise api_error(exc, what) from None
    except (HTTPError, OSError) as exc:
        raise PluginError(f"{what}: cannot reach the API server: {exc}") from None


def get_session(target: Target, name: str) -> dict[str, Any]:
    try:
        obj: Any = target.custom.get_namespaced_custom_object(
            GROUP, VERSION, target.namespace, PLURAL, name
        )
    except ApiException as exc:
        if exc.status == 404:
            raise PluginError(f"session {name} not found in namespace {target.namespace}") from None
        raise api_error(exc, f"reading session {name}") from None
    except (HTTPError, OSError) as exc:
        raise PluginError(f"reading session {name}: cannot reach the API server: {exc}") from None
    return dict(obj)


def list_sessions(target: Target) -> list[dict[str, Any]]:
    got = call(
        f"listing sessions in namespace {target.namespace}",
        target.custom.list_namespaced_custom_object,
        GROUP,
        VERSION,
        target.namespace,
        PLURAL,
    )
    items = [dict(item) for item in got.get("items") or []]
    return sorted(items, key=lambda o: str((o.get("metadata") or {}).get("name", "")))


def sessions_per_namespace(target: Target) -> dict[str, int]:
    """Every namespace that holds Sessions, with how many: pages of names only."""
    counts: dict[str, int] = {}
    token: str | None = None
    while True:
        page = call(
            "listing sessions in all namespaces",
            target.custom.list_cluster_custom_object,
            GROUP,
            VERSION,
            PLURAL,
            limit=500,
            _continue=token,
        )
        for item in page.get("items") or []:
            namespace = str((item.get("metadata") or {}).get("namespace", ""))
            counts[namespace] = counts.get(namespace, 0) + 1
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return counts


def patch_session(target: Target, name: str, patch: dict[str, Any]) -> dict[str, Any]:
    get_session(target, name)  # a clear "not found" before the patch
    return dict(
        call(
            f"updating session {name}",
            target.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            target.namespace,
            PLURAL,
            name,
            patch,
            _content_type="application/merge-patch+json",
        )
    )


def session_events(target: Target, name: str) -> list[dict[str, Any]]:
    """Events about the Session, as plain dicts (timestamps as the API server wrote them)."""
    resp = call(
        f"listing events of session {name}",
        target.core.list_namespaced_event,
        target.namespace,
        field_selector=f"involvedObject.name={name},involvedObject.kind=Session",
        _preload_content=False,
    )
    return [dict(item) for item in json.loads(resp.data).get("items") or []]


def watch_session(
    target: Target,
    name: str,
    done: Callable[[dict[str, Any]], bool],
    timeout_s: float,
) -> dict[str, Any] | None:
    """The Session once ``done`` accepts it, or None after ``timeout_s``.

    A get, then a watch from its resourceVersion; the watch is restarted (with a
    fresh get) when the API server ends it, so no change is missed.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        obj = get_session(target, name)
        if done(obj):
            return obj
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        version = str((obj.get("metadata") or {}).get("resourceVersion", ""))
        stream = _watch.Watch()
        try:
            for event in stream.stream(
                target.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                target.namespace,
                PLURAL,
                field_selector=f"metadata.name={name}",
                resource_version=version,
                timeout_seconds=max(1, min(int(remaining) + 1, 300)),
                _request_timeout=min(remaining, 300) + 30,
            ):
                if event.get("type") == "DELETED":
                    raise PluginError(
                        f"session {name} was deleted from namespace {target.namespace}"
                    )
                current = event.get("object")
                if (
                    event.get("type") in ("ADDED", "MODIFIED")
                    and isinstance(current, dict)
                    and done(current)
                ):
                    return current
                if time.monotonic() >= deadline:
                    return None
        except ApiException as exc:
            if exc.status != 410:  # 410: the version is too old; get again
                raise api_error(exc, f"watching session {name}") from None
        except (HTTPError, OSError):
            pass  # the watch connection dropped: get again
        finally:
            stream.stop()
