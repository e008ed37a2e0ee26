"""A stand-in browser UI for `make run`: serves the checkout over HTTP on $PORT."""

import functools
import http.server
import os

port = int(os.environ.get("PORT", "3001"))
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=os.getcwd())
http.server.ThreadingHTTPServer(("127.0.0.1", port), handler).serve_forever()
