"""Kubernetes-style conditions with kstatus semantics.

lastTransitionTime moves only when a condition's status flips, so that a status
written again with the same content is byte-identical and costs no event.

kstatus (``status.Compute``, what Flux, kpt and cli-utils wait with) reads a
custom resource as: Reconciling=True -> InProgress, Stalled=True -> Failed, else
Ready=True -> Current, Ready=False or Unknown -> InProgress, no Ready -> Current.
So a Session that has ended carries no Ready condition at all (Ready=False would
read InProgress forever, Ready=True would tell ``kubectl wait --for=condition=Ready``
that it is usable): see ``Ctx.summary``.
"""

from __future__ import annotations

from collections.abc import Iterable

from .models import Condition

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
CHECKOUT_READY = "CheckoutReady"
PREVIEW_READY = "PreviewReady"
WEBUI_READY = "WebUIReady"

ORDER = (READY, RECONCILING, STALLED, CHECKOUT_READY, PREVIEW_READY, WEBUI_READY)
# The condition that carries the Session's summary reason and message in every mode
# (Ready is absent once the Session has ended).
SUMMARY = RECONCILING


def set_condition(
    existing: Iterable[Condition],
    kind: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int,
    now: str,
) -> list[Condition]:
    """Return the conditions with ``kind`` set; keep its transition time unless it flipped."""
    text = "Unknown" if status is None else ("True" if status else "False")
    conditions = list(existing)
    old = next((c for c in conditions if c.type == kind), None)
    transition = now if old is None or old.status != text else old.last_transition_time
    new = Condition(
        type=kind,
        status=text,
        reason=reason,
        message=message,
        lastTransitionTime=transition,
        observedGeneration=generation,
    )
    merged = [c for c in conditions if c.type != kind] + [new]
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(merged, key=lambda c: rank.get(c.type, len(ORDER)))


def without(existing: Iterable[Condition], kind: str) -> list[Condition]:
    """Return the conditions with no ``kind`` among them."""
    return [c for c in existing if c.type != kind]


def is_true(conditions: Iterable[Condition], kind: str) -> bool:
    return any(c.type == kind and c.status == "True" for c in conditions)
