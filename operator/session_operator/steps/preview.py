"""The preview Service (and optional Ingress) and the web UI's NetworkPolicy.

The operator changes or deletes only objects that carry this Session's
ownerReference: a name held by anything else stalls the Session
(``PreviewNameTaken``) and is left as it is, also when the Session ends. Every
patch of an object checked for ownership is guarded by its UID, every delete
carries a UID precondition, so a replacement made in between is never touched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from rdev_api import Body, names
from rdev_api.conditions import PREVIEW_READY
from rdev_api.models import WebUIState
from rdev_api.reasons import Reason

from .. import builders
from ..context import Ctx, Env, Halt
from ..kube import KubeError
from ..ports import KubePort


@dataclass(frozen=True)
class _Calls:
    """One kind's calls, so that claiming, fixing and deleting below serve every kind."""

    kind: str
    get: Callable[[str, str], Awaitable[Body | None]]
    create: Callable[[Body], Awaitable[Body | None]]
    patch: Callable[[str, str, Any], Awaitable[Body | None]]
    delete: Callable[[str, str, str], Awaitable[bool]]


def _services(kube: KubePort) -> _Calls:
    return _Calls(
        "Service", kube.get_service, kube.create_service, kube.patch_service, kube.delete_service
    )


def _ingresses(kube: KubePort) -> _Calls:
    return _Calls(
        "Ingress", kube.get_ingress, kube.create_ingress, kube.patch_ingress, kube.delete_ingress
    )


def _network_policies(kube: KubePort) -> _Calls:
    return _Calls(
        "NetworkPolicy",
        kube.get_network_policy,
        kube.create_network_policy,
        kube.patch_network_policy,
        kube.delete_network_policy,
    )


def _uid(obj: Body) -> str:
    return str(obj["metadata"]["uid"])


async def _claim(
    ctx: Ctx, calls: _Calls, desired: Body, known: Body | None, read: bool
) -> tuple[Body, bool]:
    """Ours, and whether it was just created from ``desired``; Halt when the name is another's.

    ``known`` is our object as last seen; else it is read first when ``read``
    (it may exist), or created straight away (a 409 then reads it).
    """
    kind, name = calls.kind, desired["metadata"]["name"]
    current = known
    if current is None and read:
        current = await calls.get(ctx.namespace, name)
    if current is None:
        created = await calls.create(desired)
        if created is not None:
            ctx.event("Normal", f"{kind}Created", f"{kind} {name} created")
            return created, True
        current = await calls.get(ctx.namespace, name)
        if current is None:  # deleted since the 409: try again soon
            raise KubeError(409, f"{kind} {name} was deleted while being created")
    if not builders.owned_by(current, ctx.uid):
        raise Halt(
            Reason.PREVIEW_NAME_TAKEN,
            f"{kind} {name} exists and is not owned by this Session; rename the Session"
            f" or the {kind}",
        )
    return current, False


async def _fix_spec(ctx: Ctx, calls: _Calls, desired: Body, current: Body) -> Body | None:
    """Patch the spec fields of ours that differ from ``desired`` (nothing else)."""
    ops = builders.spec_patch(desired, current)
    if not ops:
        return None
    patch = builders.uid_guard(_uid(current)) + ops
    return await calls.patch(ctx.namespace, desired["metadata"]["name"], patch)


async def _delete_ours(ctx: Ctx, calls: _Calls, name: str, uid: str | None) -> None:
    """Delete the object if this Session owns it; gone or someone else's: leave it.

    ``uid`` is ours as last seen; a 409 (the name now holds another object)
    means read it and check again.
    """
    if uid is not None and await calls.delete(ctx.namespace, name, uid):
        return
    current = await calls.get(ctx.namespace, name)
    if current is not None and builders.owned_by(current, ctx.uid):
        await calls.delete(ctx.namespace, name, _uid(current))


def _web_ui_up(state: str | None) -> bool:
    """Started (running, or failed and retried): the policy belongs with it."""
    return state is not None and state != WebUIState.STOPPED


def _policy_may_exist(ctx: Ctx, env: Env) -> bool:
    """Known to this process, or the status at the start says the web UI was up.

    Its status is written only after the policy was made or removed in the same
    reconcile, so a stopped web UI in the status means no policy is left.
    """
    return ctx.key in env.webui_policies or _web_ui_up(ctx.original.get("webUI"))


async def ensure_webui_policy(ctx: Ctx, env: Env) -> None:
    """While the web UI runs, only the allowed peers reach its port (see builders).

    Checked again (one read) each time the web UI is, so a policy deleted or
    changed by hand comes back within ``RDEV_WEBUI_CHECK_INTERVAL``.
    """
    checked = env.webui_checked.get(ctx.key)
    known = env.webui_policies.get(ctx.key)
    if known is not None and known[1] == checked:
        return
    settings = env.settings
    desired = builders.webui_network_policy(
        session=ctx.name,
        namespace=ctx.namespace,
        uid=ctx.uid,
        project=ctx.spec.project,
        feature=ctx.spec.feature_slug,
        port=settings.webui_port,
        allowed_from=[peer.as_peer() for peer in settings.webui_allowed_from],
    )
    ctx.step("restrict access to the web UI")
    calls = _network_policies(env.kube)
    current, created = await _claim(ctx, calls, desired, None, _policy_may_exist(ctx, env))
    if not created:
        current = await _fix_spec(ctx, calls, desired, current) or current
    env.webui_policies[ctx.key] = (_uid(current), checked)


async def remove_webui_policy(ctx: Ctx, env: Env) -> None:
    """Delete ours, if it may be there (no request for a web UI that never ran)."""
    if not _policy_may_exist(ctx, env):
        return
    known = env.webui_policies.get(ctx.key)
    name = names.webui_policy_name(ctx.name)
    uid = known[0] if known is not None else None
    await _delete_ours(ctx, _network_policies(env.kube), name, uid)
    env.webui_policies.pop(ctx.key, None)


async def ensure_preview(ctx: Ctx, env: Env) -> None:
    """The policy follows the web UI; the Service (and Ingress) lead to the port in use."""
    # First: a stall below must not keep the policy from following the web UI.
    if _web_ui_up(ctx.status.web_ui):
        await ensure_webui_policy(ctx, env)
    else:
        await remove_webui_policy(ctx, env)
    settings = env.settings
    port = builders.pick_port(
        ctx.status.web_ui == WebUIState.RUNNING, settings.webui_port, ctx.spec.preview_port
    )
    svc_name = names.service_name(ctx.name)
    desired = builders.preview_service(
        session=ctx.name,
        namespace=ctx.namespace,
        uid=ctx.uid,
        project=ctx.spec.project,
        feature=ctx.spec.feature_slug,
        port=port,
    )
    cached = env.store.services.get((ctx.namespace, svc_name))
    known = cached if cached is not None and builders.owned_by(cached, ctx.uid) else None
    if known is None:
        ctx.step("create the preview Service")
    # Create first: a new Session's Service does not exist yet, and a 409 reads it. Only a
    # name the store already shows held by another object is read before (one request
    # instead of two), since the create would fail.
    current, created = await _claim(
        ctx, _services(env.kube), desired, known, read=cached is not None
    )
    if created:
        env.store.services.put(current)
    elif builders.service_port(current) != port:
        ctx.step("update the preview Service")
        patch = builders.uid_guard(_uid(current)) + builders.service_port_patch(port)
        patched = await env.kube.patch_service(ctx.namespace, svc_name, patch)
        if patched is not None:
            env.store.services.put(patched)
        ctx.event("Normal", Reason.SERVICE_UPDATED, f"preview Service now on port {port}")
    if settings.ingress_class and settings.ingress_host_template:
        values = builders.template_values(ctx.name, ctx.namespace, ctx.spec.project, port)
        ingress = builders.preview_ingress(
            session=ctx.name,
            namespace=ctx.namespace,
            uid=ctx.uid,
            project=ctx.spec.project,
            feature=ctx.spec.feature_slug,
            host=settings.ingress_host_template.format(**values),
            ingress_class=settings.ingress_class,
        )
        calls = _ingresses(env.kube)
        current, created = await _claim(ctx, calls, ingress, None, read=True)
        if not created:
            await _fix_spec(ctx, calls, ingress, current)
    ctx.status.service_name = svc_name
    ctx.status.service_port = port
    ctx.status.preview_url = builders.preview_url(
        settings.preview_url_template, ctx.name, ctx.namespace, ctx.spec.project, port
    )
    ctx.cond(PREVIEW_READY, True, Reason.SERVICE_READY, f"preview Service {svc_name} is ready")


async def remove_preview(ctx: Ctx, env: Env) -> None:
    """Delete what of the preview and the web UI policy is ours; leave anything else."""
    await remove_webui_policy(ctx, env)
    svc = names.service_name(ctx.name)
    key = (ctx.namespace, svc)
    cached = env.store.services.get(key)
    known = cached if cached is not None and builders.owned_by(cached, ctx.uid) else None
    # Out of the store first: the DELETED event, which may come before the
    # response, then finds nothing to restore (Informer.observe_service).
    if known is not None:
        env.store.services.remove(key)
    try:
        uid = _uid(known) if known is not None else None
        await _delete_ours(ctx, _services(env.kube), svc, uid)
    except BaseException:
        if known is not None:
            env.store.services.put(known)
        raise
    if env.settings.ingress_class:
        await _delete_ours(ctx, _ingresses(env.kube), svc, None)
