"""``python -m session_operator``: hide unused client libraries, then run the operator.

kopf imports every Kubernetes client library it finds installed (to recognise
their objects as bodies and to borrow their credentials). The operator talks
plain aiohttp (kube.py) and logs kopf in itself, so the client libraries, when
installed beside it (the plugin's extra, tests and the benchmark install them;
the image does not), are hidden before kopf is imported: 45 MB less resident
memory, and the same process as the image's.
"""

import sys

from session_operator import UNUSED_CLIENTS

for _unused in UNUSED_CLIENTS:
    sys.modules.setdefault(_unused, None)  # type: ignore[arg-type]

from session_operator.main import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
