"""kopf glue only: watch events go to the informer (store, mappers, queue), deletions to
the finalizer.

The App reaches every handler through kopf's ``memo`` (set in the start-up
handler), never through a module global.
"""

from __future__ import annotations

from typing import Any

import kopf

from rdev_api import GROUP, PLURAL, VERSION
from rdev_api.execresult import ExecError
from rdev_api.names import MANAGED_BY_LABEL, MANAGER, PROJECT_LABEL
from rdev_api.reasons import Reason

from .app import App
from .kube import KubeError


def app_of(memo: Any) -> App:
    app = getattr(memo, "app", None)
    if app is None:
        raise kopf.TemporaryError("the operator is still starting", delay=1)
    return app  # type: ignore[no-any-return]


@kopf.on.event(GROUP, VERSION, PLURAL)
async def session_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    app_of(memo).informer.observe_session(event.get("type"), dict(event["object"]))


@kopf.on.delete(GROUP, VERSION, PLURAL, retries=None, backoff=5.0)
async def session_delete(
    body: kopf.Body, retry: int, memo: kopf.Memo, logger: Any, **_: Any
) -> None:
    app = app_of(memo)
    plain = {k: body.get(k) for k in ("metadata", "spec", "status")}
    try:
        await app.controller.finalize(dict(_deep(plain)))
    except (TimeoutError, ExecError, KubeError, OSError) as exc:
        if retry + 1 >= app.settings.delete_retries:
            # Never hold the finalizer forever: the worktree stays where it is.
            message = f"giving up on cleaning the worktree after {retry + 1} attempts: {exc}"
            logger.warning(message)
            await app.env.events.post_event(plain, "Warning", Reason.WORKTREE_KEPT, message)
            return
        raise kopf.TemporaryError(str(exc), delay=app.queue.backoff.delay(retry + 1)) from exc


@kopf.on.event("", "v1", "pods", labels={PROJECT_LABEL: kopf.PRESENT})
async def pod_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    app_of(memo).informer.observe_pod(event.get("type"), dict(event["object"]))


@kopf.on.event("", "v1", "services", labels={MANAGED_BY_LABEL: MANAGER})
async def service_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    app_of(memo).informer.observe_service(event.get("type"), dict(event["object"]))


def _deep(body: Any) -> Any:
    """A plain copy of kopf's live views (dicts and lists all the way down)."""
    if isinstance(body, dict) or hasattr(body, "items"):
        return {k: _deep(v) for k, v in body.items()}
    if isinstance(body, list):
        return [_deep(v) for v in body]
    return body
