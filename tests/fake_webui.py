"""Stands in for the web UI command in tests: a real long-lived process.

It records the PORT it was given and its working directory next to its pid
file's folder is not known here, so it writes them to stdout (the web UI log).
With ``--serve`` it also serves a page over HTTP on a free local port and logs
``listening on 127.0.0.1:<port>``: kwok runs every pod's processes on this
machine, so the pod's port (PORT) is mapped to that one by a kwok PortForward.
"""

import http.server
import os
import signal
import sys
import threading
import time

print(f"fake web UI pid={os.getpid()} port={os.environ.get('PORT')} cwd={os.getcwd()}", flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

if "--serve" in sys.argv[1:]:
    PAGE = f"<h1>fake web UI</h1><p>{os.getcwd()}</p>\n".encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, format: str, *args: object) -> None:
            print(f"fake web UI {self.command} {self.path}", flush=True)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    print(f"fake web UI listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()

deadline = time.monotonic() + 3600
while time.monotonic() < deadline:
    time.sleep(1)
