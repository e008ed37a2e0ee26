"""The rdev Session operator: the controller for Sessions, over the shared ``rdev_api``."""

# Kubernetes client libraries kopf imports when installed, which the operator never uses
# (see __main__.py): hidden before kopf is imported.
UNUSED_CLIENTS = ("kubernetes", "kubernetes_asyncio", "pykube")
