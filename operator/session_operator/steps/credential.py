"""A session's own credential (spec.credential): issued while Active, revoked first at the end.

Four objects of one name (names.credential_name), all owned by the Session: a
ServiceAccount, a Role that allows exactly this Session and its pod, a
RoleBinding, and a Secret holding a kubeconfig with a token bound to that
Secret. Deleting the Secret invalidates the token at once.

Order, so that an interruption at any line converges with nothing duplicated
and no token anywhere but in the Secret: the Secret is created empty first,
then the ServiceAccount, Role and RoleBinding; only then is a token minted,
bound to the Secret's UID, and written into it (guarded by that UID). A Secret
found without a token gets one; a token minted by a process that died before
writing it was never stored and dies with the Secret.

Level-based: every RDEV_CHANGES_INTERVAL (with the workspace state) all four
are claimed again, so one deleted by hand comes back (a new ServiceAccount with
a new token: a token names its account's UID).

The operator never reads Secrets: a 409 on create is resolved with a patch
that changes nothing and succeeds only on an object this Session owns
(kube.owner_guard), which also returns it; anyone else's fails before any of
it is returned.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rdev_api import Body, names
from rdev_api.reasons import Reason

from .. import credentials
from ..context import Ctx, Env, Halt, iso, parse_ts
from ..kube import KubeError, owner_guard
from ..ports import KubePort


@dataclass(frozen=True)
class _Calls:
    kind: str
    create: Callable[[Body], Awaitable[Body | None]]
    patch: Callable[[str, str, Any], Awaitable[Body | None]]
    delete: Callable[[str, str, str], Awaitable[bool]]


def _calls(kube: KubePort) -> dict[str, _Calls]:
    return {
        "Secret": _Calls("Secret", kube.create_secret, kube.patch_secret, kube.delete_secret),
        "ServiceAccount": _Calls(
            "ServiceAccount",
            kube.create_service_account,
            kube.patch_service_account,
            kube.delete_service_account,
        ),
        "Role": _Calls("Role", kube.create_role, kube.patch_role, kube.delete_role),
        "RoleBinding": _Calls(
            "RoleBinding",
            kube.create_role_binding,
            kube.patch_role_binding,
            kube.delete_role_binding,
        ),
    }


CREATE_ORDER = ("Secret", "ServiceAccount", "Role", "RoleBinding")
# The Secret first: deleting it ends the token; the rest only stops a new one.
DELETE_ORDER = ("Secret", "RoleBinding", "Role", "ServiceAccount")


@dataclass
class Issued:
    """What this process knows of a session's credential (lost on restart on purpose:
    the next reconcile finds it again with one owner check per object)."""

    uids: dict[str, str]
    token: tuple[str, str] | None  # (expires at, asked for until), RFC 3339
    pod: str  # the pod the Role names
    checked_at: datetime  # when all four were last claimed (made again if deleted by hand)


def _uid(obj: Body) -> str:
    return str(obj["metadata"]["uid"])


async def _own(ctx: Ctx, calls: _Calls, name: str) -> Body | None:
    """Ours as it is; None when there is none; KubeError 422 when the name is another's."""
    return await calls.patch(ctx.namespace, name, owner_guard(ctx.uid))


def _not_ours(exc: KubeError) -> bool:
    return exc.status == 422


async def _claim(ctx: Ctx, calls: _Calls, desired: Body) -> tuple[Body, bool]:
    """Ours, and whether it was created just now; Halt when the name is another's."""
    name = desired["metadata"]["name"]
    created = await calls.create(desired)
    if created is not None:
        return created, True
    try:
        current = await _own(ctx, calls, name)
    except KubeError as exc:
        if not _not_ours(exc):
            raise
        raise Halt(
            Reason.CREDENTIAL_NAME_TAKEN,
            f"{calls.kind} {name} exists and is not owned by this Session; rename the Session"
            f" or the {calls.kind}",
        ) from None
    if current is None:  # deleted since the 409: try again soon
        raise KubeError(409, f"{calls.kind} {name} was deleted while being created")
    return current, False


def _desired(ctx: Ctx, kind: str, pod: str) -> Body:
    common: dict[str, Any] = {
        "session": ctx.name,
        "namespace": ctx.namespace,
        "uid": ctx.uid,
        "project": ctx.spec.project,
        "feature": ctx.spec.feature_slug,
    }
    if kind == "Secret":
        return credentials.secret(**common)
    if kind == "ServiceAccount":
        return credentials.service_account(**common)
    if kind == "Role":
        return credentials.role(**common, pod=pod)
    return credentials.role_binding(**common)


def _session_expires(ctx: Ctx) -> str:
    assert ctx.status.expires_at is not None  # set by the controller before the steps
    return ctx.status.expires_at


def _token_due(ctx: Ctx, token: tuple[str, str] | None) -> bool:
    session_expires = parse_ts(_session_expires(ctx))
    assert session_expires is not None
    times = None
    if token is not None:
        expires, requested = parse_ts(token[0]), parse_ts(token[1])
        if expires is not None and requested is not None:
            times = (expires, requested)
    return credentials.renew_due(times, session_expires, ctx.now)


def _wake_to_renew(ctx: Ctx, token: tuple[str, str]) -> None:
    """A token that ends before the session is renewed RENEW_BEFORE ahead of its end."""
    expires = parse_ts(token[0])
    if expires is not None and token[0] < _session_expires(ctx):
        before = expires - credentials.RENEW_BEFORE
        ctx.due_in((before - ctx.now).total_seconds())


async def ensure_credential(ctx: Ctx, env: Env) -> None:
    """Issue the credential (or renew its token) while spec.credential is on; else revoke it."""
    if not ctx.spec.credential:
        await revoke_credential(ctx, env)
        return
    target = ctx.target
    assert target is not None, "the credential needs the session's pod"
    name = names.credential_name(ctx.name)
    known = env.credentials.get(ctx.key)
    recheck = env.settings.changes_interval
    if (
        known is not None
        and known.pod == target.name
        and ctx.now - known.checked_at < recheck
        and not _token_due(ctx, known.token)
    ):
        assert known.token is not None
        ctx.status.credential_secret = name
        _wake_to_renew(ctx, known.token)
        ctx.due_in((known.checked_at + recheck - ctx.now).total_seconds())
        return
    ctx.step("issue the session credential")
    calls = _calls(env.kube)
    uids: dict[str, str] = {}
    secret: Body | None = None
    new_account = False
    for kind in CREATE_ORDER:
        desired = _desired(ctx, kind, target.name)
        got, created = await _claim(ctx, calls[kind], desired)
        # A token names its ServiceAccount's UID: one made again (deleted by hand) needs a new one.
        new_account = new_account or (created and kind == "ServiceAccount")
        if kind == "Role" and got.get("rules") != desired["rules"]:  # the session moved pods
            fix = [{"op": "test", "path": "/metadata/uid", "value": _uid(got)}]
            fix.append({"op": "replace", "path": "/rules", "value": desired["rules"]})
            got = await calls[kind].patch(ctx.namespace, desired["metadata"]["name"], fix) or got
        uids[kind] = _uid(got)
        if kind == "Secret":
            secret = got
    assert secret is not None
    token = credentials.token_times(secret)
    if new_account or _token_due(ctx, token):
        token = await _mint(ctx, env, uids["Secret"])
    assert token is not None
    env.credentials[ctx.key] = Issued(uids=uids, token=token, pod=target.name, checked_at=ctx.now)
    ctx.status.credential_secret = name
    _wake_to_renew(ctx, token)
    ctx.due_in(recheck.total_seconds())


async def _mint(ctx: Ctx, env: Env, secret_uid: str) -> tuple[str, str]:
    """A token bound to the Secret, written into that Secret (and nowhere else)."""
    name = names.credential_name(ctx.name)
    until = _session_expires(ctx)
    session_expires = parse_ts(until)
    assert session_expires is not None
    seconds = credentials.token_seconds(session_expires, ctx.now)
    request = credentials.token_request(ctx.name, name, secret_uid, seconds)
    answer = await env.kube.create_token(ctx.namespace, name, request)
    if answer is None:  # the account or the Secret went away in between: start over
        env.credentials.pop(ctx.key, None)
        raise KubeError(404, f"ServiceAccount or Secret {name} vanished while issuing a token")
    status = answer.get("status") or {}
    expires = str(status.get("expirationTimestamp") or iso(ctx.now))
    config = credentials.kubeconfig(
        server=env.settings.credential_server or env.kube.server,
        ca_data=env.kube.ca_data,
        token=str(status["token"]),
        namespace=ctx.namespace,
        session=ctx.name,
    )
    patch = credentials.secret_fill_patch(secret_uid, config, expires, until)
    if await env.kube.patch_secret(ctx.namespace, name, patch) is None:
        env.credentials.pop(ctx.key, None)
        raise KubeError(404, f"Secret {name} vanished while issuing a token")
    ctx.event(
        "Normal",
        Reason.CREDENTIAL_ISSUED,
        f"credential issued in Secret {name} (key {names.CREDENTIAL_KEY}), valid until {expires}",
    )
    return expires, until


def may_hold_credential(ctx: Ctx, env: Env) -> bool:
    return bool(ctx.spec.credential or ctx.status.credential_secret or ctx.key in env.credentials)


async def revoke_credential(ctx: Ctx, env: Env) -> None:
    """Delete the Secret (the token dies with it), the RoleBinding, the Role and the
    ServiceAccount that this Session owns; 404 is done, anyone else's is left alone."""
    if not may_hold_credential(ctx, env):
        return
    known = env.credentials.get(ctx.key)
    name = names.credential_name(ctx.name)
    calls = _calls(env.kube)
    for kind in DELETE_ORDER:
        uid = known.uids.get(kind) if known is not None else None
        if uid is not None and await calls[kind].delete(ctx.namespace, name, uid):
            continue
        try:
            current = await _own(ctx, calls[kind], name)
        except KubeError as exc:
            if not _not_ours(exc):
                raise
            continue  # someone else's: not ours to delete
        if current is not None:
            await calls[kind].delete(ctx.namespace, name, _uid(current))
    env.credentials.pop(ctx.key, None)
    if ctx.status.credential_secret:
        ctx.event("Normal", Reason.CREDENTIAL_REVOKED, f"credential revoked: Secret {name} deleted")
    ctx.status.credential_secret = None
