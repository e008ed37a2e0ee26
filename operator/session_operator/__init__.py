"""The rdev Session operator: remote-development sessions on a project's pod."""

GROUP = "rdev.io"
VERSION = "v1alpha1"
PLURAL = "sessions"
KIND = "Session"
API_VERSION = f"{GROUP}/{VERSION}"
FINALIZER = "rdev.io/finalizer"
