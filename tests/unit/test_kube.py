"""Which API answers are worth retrying at start-up."""

from __future__ import annotations

import pytest

from session_operator.kube import KubeError


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        (0, True),
        (429, True),
        (500, True),
        (503, True),
        (400, False),
        (403, False),
        (404, False),
        (409, False),
        (422, False),
    ],
)
def test_transient_statuses(status: int, transient: bool) -> None:
    assert KubeError(status, "x").transient is transient
