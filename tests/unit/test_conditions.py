"""kstatus conditions: lastTransitionTime moves only when the status flips."""

from __future__ import annotations

from rdev_api.conditions import (
    CHECKOUT_READY,
    ORDER,
    PREVIEW_READY,
    READY,
    RECONCILING,
    STALLED,
    WEBUI_READY,
    is_true,
    set_condition,
)
from rdev_api.models import Condition

T0, T1, T2 = "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"


def test_new_condition() -> None:
    (cond,) = set_condition([], READY, True, "Active", "ok", 3, T0)
    assert cond == Condition(
        type=READY,
        status="True",
        reason="Active",
        message="ok",
        lastTransitionTime=T0,
        observedGeneration=3,
    )


def test_status_text() -> None:
    assert set_condition([], READY, False, "r", "m", 1, T0)[0].status == "False"
    assert set_condition([], READY, None, "r", "m", 1, T0)[0].status == "Unknown"


def test_same_status_keeps_transition_time_but_updates_the_rest() -> None:
    first = set_condition([], READY, False, "ProjectNotFound", "no pod", 1, T0)
    second = set_condition(first, READY, False, "ProjectBusy", "busy", 2, T1)
    (cond,) = second
    assert cond.last_transition_time == T0
    assert (cond.reason, cond.message, cond.observed_generation) == ("ProjectBusy", "busy", 2)


def test_flip_moves_transition_time() -> None:
    first = set_condition([], READY, False, "r", "m", 1, T0)
    flipped = set_condition(first, READY, True, "r", "m", 1, T1)
    assert flipped[0].last_transition_time == T1
    back = set_condition(flipped, READY, False, "r", "m", 1, T2)
    assert back[0].last_transition_time == T2
    unknown = set_condition(back, READY, None, "r", "m", 1, T0)
    assert unknown[0].last_transition_time == T0


def test_rewriting_the_same_content_is_identical() -> None:
    first = set_condition([], READY, True, "Active", "ok", 1, T0)
    again = set_condition(first, READY, True, "Active", "ok", 1, T2)
    assert again == first


def test_other_conditions_untouched_and_order_is_fixed() -> None:
    conds: list[Condition] = []
    for kind in reversed(ORDER):
        conds = set_condition(conds, kind, True, "r", "m", 1, T0)
    conds = set_condition(conds, "Custom", True, "r", "m", 1, T0)
    conds = set_condition(conds, "Another", True, "r", "m", 1, T0)
    assert [c.type for c in conds] == [*ORDER, "Custom", "Another"]
    assert ORDER == (READY, RECONCILING, STALLED, CHECKOUT_READY, PREVIEW_READY, WEBUI_READY)
    updated = set_condition(conds, STALLED, False, "x", "y", 2, T1)
    assert [c.type for c in updated] == [c.type for c in conds]
    for before, after in zip(conds, updated, strict=True):
        if before.type != STALLED:
            assert before == after


def test_input_is_not_mutated() -> None:
    conds = set_condition([], READY, True, "r", "m", 1, T0)
    snapshot = [c.model_copy() for c in conds]
    set_condition(conds, READY, False, "r", "m", 1, T1)
    set_condition(conds, STALLED, True, "r", "m", 1, T1)
    assert conds == snapshot


def test_is_true() -> None:
    conds = set_condition([], READY, True, "r", "m", 1, T0)
    conds = set_condition(conds, STALLED, False, "r", "m", 1, T0)
    assert is_true(conds, READY)
    assert not is_true(conds, STALLED)
    assert not is_true(conds, RECONCILING)
