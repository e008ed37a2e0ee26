"""Names, labels, annotations, ports and the run-directory layout: what both sides must agree on.

The operator names and labels what it creates with these; the plugin finds the
same objects and files with them. Pure functions of their inputs, so a retry
always arrives at the same name.
"""

from __future__ import annotations

import posixpath

PROJECT_LABEL = "rdev.io/project"
CREATED_BY_ANNOTATION = "rdev.io/created-by"
SESSION_LABEL = "rdev.io/session"
FEATURE_LABEL = "rdev.io/feature"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGER = "rdev-session-operator"
REPO_PATH_ANNOTATION = "rdev.io/repo-path"
WORKTREE_ROOT_ANNOTATION = "rdev.io/worktree-root"
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
PREVIEW_PORT_NAME = "preview"
CLONE_SCHEME = "rdev"  # git-remote-rdev makes rdev://<namespace>/<session> a git URL

WEBUI_PORT = 3001  # the default of RDEV_WEBUI_PORT: where the web UI listens in the pod
PREVIEW_PORT = 8080  # the default of spec.previewPort
WEBUI_LOG = "webui.log"  # in the run directory


def service_name(session: str) -> str:
    return f"{session}-preview"


def clone_url(namespace: str, session: str) -> str:
    """status.cloneURL: what ``git clone`` takes to reach the session's worktree."""
    return f"{CLONE_SCHEME}://{namespace}/{session}"


def webui_policy_name(session: str) -> str:
    return f"{session}-webui"


CREDENTIAL_KEY = "kubeconfig"  # the key of the credential Secret's kubeconfig
# On the credential Secret: when the token it holds expires (RFC 3339), so that a
# restarted operator knows whether an extended session needs a new one.
TOKEN_EXPIRES_ANNOTATION = "rdev.io/token-expires-at"  # noqa: S105 (a name, not a secret)
# ... and the session's expiresAt it was asked for: a later one (extend) needs a new token.
TOKEN_REQUESTED_ANNOTATION = "rdev.io/token-requested-until"  # noqa: S105
CREDENTIAL_SUFFIX = "-credential"


def credential_name(session: str) -> str:
    """The ServiceAccount, Role, RoleBinding and Secret of a session's credential (one name)."""
    return f"{session}{CREDENTIAL_SUFFIX}"


def checkout_path(worktree_root: str, session: str) -> str:
    return f"{worktree_root.rstrip('/')}/{session}"


def run_dir(worktree_root: str, session: str) -> str:
    """Web UI pid file and log live here, outside the checkout."""
    return f"{worktree_root.rstrip('/')}/.rdev/{session}"


def webui_log_in(run_dir: str) -> str:
    """The web UI's log in its run directory: the start script writes it, activity reads it."""
    return posixpath.join(run_dir, WEBUI_LOG)


def webui_log(checkout: str, session: str) -> str:
    """The web UI's log, found from the checkout path (its parent is the worktree root)."""
    return webui_log_in(run_dir(posixpath.dirname(checkout.rstrip("/")), session))
