"""A stand-in browser UI for `make run`: serves the checkout over HTTP.

In a real pod the web UI listens on $PORT (3001). kwok runs the pod's
processes on this machine, where 3001 may be taken, so `make run` passes
`--listen N` and maps the pod's 3001 to N with a kwok PortForward.
"""

import argparse
import functools
import http.server
import os

parser = argparse.ArgumentParser()
parser.add_argument("--listen", type=int, help="local port (default: $PORT, else 3001)")
port = parser.parse_args().listen or int(os.environ.get("PORT", "3001"))
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=os.getcwd())
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
print(f"demo web UI serving {os.getcwd()} on 127.0.0.1:{port}", flush=True)
server.serve_forever()
