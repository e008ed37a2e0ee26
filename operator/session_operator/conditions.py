"""Kubernetes-style conditions with kstatus semantics.

lastTransitionTime moves only when a condition's status flips, so that a status
written again with the same content is byte-identical and costs no event.
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


def is_true(conditions: Iterable[Condition], kind: str) -> bool:
    return any(c.type == kind and c.status == "True" for c in conditions)
