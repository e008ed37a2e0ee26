"""Every Kubernetes call the operator makes (except exec, see podexec.py).

Synchronous on purpose: it runs in worker threads, never on kopf's event loop.
409 on create and 404 on delete mean "already done"; bodies are plain dicts in
the API's own camelCase so that builders and tests share one shape.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from . import GROUP, KIND, PLURAL, VERSION

log = logging.getLogger(__name__)
COMPONENT = "rdev-session-operator"
Body = dict[str, Any]


def load_kube_config() -> client.Configuration:
    """Kubeconfig from KUBECONFIG (or ~/.kube/config), else the in-cluster identity."""
    cfg = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    return cfg


def _json(response: Any) -> Body:
    return dict(json.loads(response.data))


class Kube:
    def __init__(self, cfg: client.Configuration, pool_size: int = 16):
        cfg.connection_pool_maxsize = max(pool_size, 4)
        self.cfg = cfg
        self.api_client = client.ApiClient(cfg)
        self.core = client.CoreV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.net = client.NetworkingV1Api(self.api_client)
        self.instance = os.environ.get("POD_NAME") or socket.gethostname()

    def new_api_client(self) -> client.ApiClient:
        return client.ApiClient(self.cfg)

    # Sessions -------------------------------------------------------------
    def patch_session_status(self, namespace: str, name: str, status: Body) -> Body | None:
        try:
            resp = self.custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                {"status": status},
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return _json(resp)

    def list_objects(self, kind: str, namespace: str | None, selector: str = "") -> list[Body]:
        """One LIST (pods, services or sessions), items with kind and apiVersion filled in."""
        kw: dict[str, Any] = {"_preload_content": False}
        if selector:
            kw["label_selector"] = selector
        if kind == "sessions":
            if namespace:
                resp = self.custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, **kw
                )
            else:
                resp = self.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, **kw)
        elif kind == "pods":
            resp = (
                self.core.list_namespaced_pod(namespace, **kw)
                if namespace
                else self.core.list_pod_for_all_namespaces(**kw)
            )
        else:
            resp = (
                self.core.list_namespaced_service(namespace, **kw)
                if namespace
                else self.core.list_service_for_all_namespaces(**kw)
            )
        return list(_json(resp).get("items") or [])

    # Pods -----------------------------------------------------------------
    def patch_pod(self, namespace: str, name: str, patch: Body) -> bool:
        try:
            self.core.patch_namespaced_pod(name, namespace, patch, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # Services -------------------------------------------------------------
    def get_service(self, namespace: str, name: str) -> Body | None:
        try:
            return _json(self.core.read_namespaced_service(name, namespace, _preload_content=False))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def create_service(self, body: Body) -> Body | None:
        """Create; None when it already exists (409), so the caller re-reads and patches."""
        try:
            resp = self.core.create_namespaced_service(
                body["metadata"]["namespace"],
                body,  # type: ignore[arg-type]
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status == 409:
                return None
            raise
        return _json(resp)

    def patch_service(self, namespace: str, name: str, patch: Any) -> Body | None:
        try:
            resp = self.core.patch_namespaced_service(
                name, namespace, patch, _preload_content=False
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return _json(resp)

    def delete_service(self, namespace: str, name: str) -> None:
        try:
            self.core.delete_namespaced_service(name, namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status != 404:
                raise

    # Ingresses ------------------------------------------------------------
    def apply_ingress(self, body: Body) -> None:
        ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
        try:
            self.net.create_namespaced_ingress(ns, body, _preload_content=False)  # type: ignore[arg-type]
        except ApiException as exc:
            if exc.status != 409:
                raise
            self.net.patch_namespaced_ingress(name, ns, body, _preload_content=False)

    def delete_ingress(self, namespace: str, name: str) -> None:
        try:
            self.net.delete_namespaced_ingress(name, namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status != 404:
                raise

    # Events ---------------------------------------------------------------
    def post_event(self, session: Body, kind: str, reason: str, message: str) -> None:
        """A core/v1 Event on the Session; failures are logged, never raised."""
        meta = session["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{secrets.token_hex(8)}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
            "type": kind,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.instance[:128],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "eventTime": None,
            "count": 1,
        }
        try:
            self.core.create_namespaced_event(
                meta["namespace"],
                body,  # type: ignore[arg-type]
                _preload_content=False,
            )
        except ApiException as exc:
            log.warning("could not post event %s on %s: %s", reason, meta["name"], exc.reason)
