"""A local listener whose every connection is a ``pods/portforward`` stream to the pod.

One websocket per accepted connection (the official client's PortForward
carries one connection per port and stream), each pumped by a thread of its
own, so a browser's parallel requests are served side by side.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import socketserver
import sys
import threading
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward

_CHUNK = 65536


class Forwarder(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(
        self,
        make_client: Any,
        namespace: str,
        pod: str,
        remote_port: int,
        local_port: int = 0,
        address: str = "127.0.0.1",
    ) -> None:
        self.make_client = make_client
        self.namespace = namespace
        self.pod = pod
        self.remote_port = remote_port
        # The stream helper swaps a method on its client while it connects:
        # connections are opened one at a time, each on a client of its own.
        self.connect_lock = threading.Lock()
        super().__init__((address, local_port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def open_stream(self) -> Any:
        with self.connect_lock:
            api: client.ApiClient = self.make_client()
            return portforward(
                client.CoreV1Api(api).connect_get_namespaced_pod_portforward,
                self.pod,
                self.namespace,
                ports=str(self.remote_port),
            )


class _Handler(socketserver.BaseRequestHandler):
    server: Forwarder

    def handle(self) -> None:
        local: socket.socket = self.request
        server = self.server
        try:
            pf = server.open_stream()
        except (ApiException, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            print(f"port-forward to pod {server.pod} failed: {reason}", file=sys.stderr)
            return
        remote = pf.socket(server.remote_port)
        try:
            _pump(local, remote)
        finally:
            with contextlib.suppress(OSError):
                remote.close()
            error = pf.error(server.remote_port)
            if error:
                print(
                    f"port-forward to pod {server.pod}:{server.remote_port}: {error.strip()}",
                    file=sys.stderr,
                    flush=True,
                )


def _pump(local: socket.socket, remote: Any) -> None:
    """Copy bytes both ways until either side closes."""
    sel = selectors.DefaultSelector()
    sel.register(local, selectors.EVENT_READ, remote)
    sel.register(remote, selectors.EVENT_READ, local)
    try:
        while True:
            for key, _ in sel.select():
                source = key.fileobj
                try:
                    data = source.recv(_CHUNK)  # type: ignore[union-attr]
                except OSError:
                    return
                if not data:
                    return
                try:
                    key.data.sendall(data)
                except OSError:
                    return
    finally:
        sel.close()
