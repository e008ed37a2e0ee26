"""Stands in for the web UI command in tests: a real long-lived process.

It records the PORT it was given and its working directory next to its pid
file's folder is not known here, so it writes them to stdout (the web UI log).
"""

import os
import signal
import sys
import time

print(f"fake web UI pid={os.getpid()} port={os.environ.get('PORT')} cwd={os.getcwd()}", flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
deadline = time.monotonic() + 3600
while time.monotonic() < deadline:
    time.sleep(1)
