"""The operator's environment at start-up: a misspelt RDEV_* variable is named, not ignored."""

from __future__ import annotations

from kubehelpers import wait_for


def test_a_misspelt_setting_is_named_with_the_nearest_one(operator_factory):
    op = operator_factory(RDEV_WORKRES="4")
    warning = "RDEV_WORKRES is not a setting and is ignored; did you mean RDEV_WORKERS?"
    wait_for(lambda: warning in op.logs(), timeout=30, what="the unknown-setting warning")
    assert "RDEV_WORKERS is not a setting" not in op.logs()
