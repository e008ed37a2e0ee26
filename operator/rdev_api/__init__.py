"""The Session API shared by the operator and the plugin: pure facts, no I/O.

Models and enums, names, labels, annotations and ports, phases, reasons, the
run-directory layout and the idle-deadline arithmetic. ``session_operator`` and
``kubectl_session`` both import it; it imports neither.
"""

from typing import Any

# A Kubernetes object as the API server sends it (JSON as dicts and lists).
Body = dict[str, Any]

GROUP = "rdev.io"
VERSION = "v1alpha1"
PLURAL = "sessions"
KIND = "Session"
API_VERSION = f"{GROUP}/{VERSION}"
FINALIZER = "rdev.io/finalizer"
