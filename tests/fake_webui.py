"""Stands in for the web UI command in tests: a real long-lived process.

It records the PORT it was given and its working directory next to its pid
file's folder is not known here, so it writes them to stdout (the web UI log).
With ``--serve`` it also serves a page over HTTP on a free local port and logs
``listening on 127.0.0.1:<port>``: kwok runs every pod's processes on this
machine, so the pod's port (PORT) is mapped to that one by a kwok PortForward.
With ``--on-port`` it serves on the port it was given instead (the test picks a
free one as RDEV_WEBUI_PORT), with ``GET /health`` as the real UI has; and
``--health-after SECONDS`` makes /health answer 503 until then.
"""

import http.server
import os
import signal
import sys
import threading
import time

print(f"fake web UI pid={os.getpid()} port={os.environ.get('PORT')} cwd={os.getcwd()}", flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

ARGS = sys.argv[1:]
ON_PORT = "--on-port" in ARGS
HEALTHY_AT = time.monotonic() + (
    float(ARGS[ARGS.index("--health-after") + 1]) if "--health-after" in ARGS else 0
)

if "--serve" in ARGS or ON_PORT:
    PAGE = (
        "<!doctype html><title>fake web UI</title>"
        f"<h1>fake web UI</h1><p>{os.getcwd()}</p>\n".encode()
    )

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, code = PAGE, 200
            if self.path == "/health":
                up = time.monotonic() >= HEALTHY_AT
                body, code = (b'{"status":"ok"}', 200) if up else (b"starting", 503)
            self.send_response(code)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            print(f"fake web UI {self.command} {self.path}", flush=True)

    port = int(os.environ["PORT"]) if ON_PORT else 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Page)
    print(f"fake web UI listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()

deadline = time.monotonic() + 3600
while time.monotonic() < deadline:
    time.sleep(1)
