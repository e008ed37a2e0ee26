"""The preview Service (and optional Ingress): created once, its port patched in place."""

from __future__ import annotations

from typing import Any

from .. import builders
from ..conditions import PREVIEW_READY
from ..context import Ctx, Env
from ..models import WebUIState


def _owned_by(obj: dict[str, Any], uid: str) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid for ref in refs)


async def ensure_preview(ctx: Ctx, env: Env) -> None:
    settings = env.settings
    port = builders.pick_port(
        ctx.status.web_ui == WebUIState.RUNNING, settings.webui_port, ctx.spec.preview_port
    )
    svc_name = builders.service_name(ctx.name)
    cached = env.store.services.get((ctx.namespace, svc_name))
    current = cached if cached is not None and _owned_by(cached, ctx.uid) else None
    if current is None:
        current = await env.kube.get_service(ctx.namespace, svc_name)
    if current is None:
        ctx.step("create the preview Service")
        desired = builders.preview_service(
            session=ctx.name,
            namespace=ctx.namespace,
            uid=ctx.uid,
            project=ctx.spec.project,
            feature=ctx.spec.feature_slug,
            port=port,
        )
        created = await env.kube.create_service(desired)
        if created is None:  # 409: made by an earlier attempt
            current = await env.kube.get_service(ctx.namespace, svc_name)
        else:
            env.store.services.put(created)
            ctx.event("Normal", "ServiceCreated", f"preview Service {svc_name} created")
    if current is not None and builders.service_port(current) != port:
        ctx.step("update the preview Service")
        patch = builders.service_port_patch(port)
        patched = await env.kube.patch_service(ctx.namespace, svc_name, patch)
        if patched is not None:
            env.store.services.put(patched)
        ctx.event("Normal", "ServiceUpdated", f"preview Service now on port {port}")
    if settings.ingress_class and settings.ingress_host_template:
        values = builders.template_values(ctx.name, ctx.namespace, ctx.spec.project, port)
        await env.kube.apply_ingress(
            builders.preview_ingress(
                session=ctx.name,
                namespace=ctx.namespace,
                uid=ctx.uid,
                project=ctx.spec.project,
                feature=ctx.spec.feature_slug,
                host=settings.ingress_host_template.format(**values),
                ingress_class=settings.ingress_class,
            )
        )
    ctx.status.service_name = svc_name
    ctx.status.service_port = port
    ctx.status.preview_url = builders.preview_url(
        settings.preview_url_template, ctx.name, ctx.namespace, ctx.spec.project, port
    )
    ctx.cond(PREVIEW_READY, True, "ServiceReady", f"preview Service {svc_name} is ready")


async def remove_preview(ctx: Ctx, env: Env) -> None:
    svc = builders.service_name(ctx.name)
    # Out of the store first: the DELETED event, which may come before the
    # response, then finds nothing to restore (App.observe_service).
    known = env.store.services.remove((ctx.namespace, svc))
    try:
        await env.kube.delete_service(ctx.namespace, svc)
    except BaseException:
        if known is not None:
            env.store.services.put(known)
        raise
    if env.settings.ingress_class:
        await env.kube.delete_ingress(ctx.namespace, svc)
