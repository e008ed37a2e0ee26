"""The ``fault`` marker selects every fault-injection test (``pytest -m fault``)."""

from __future__ import annotations

import re
import subprocess
import sys

from kubehelpers import ROOT


def collected(*args: str) -> int:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if "no tests collected" in done.stdout:
        return 0
    found = re.search(r"(\d+)(?:/\d+)? tests? collected", done.stdout)
    assert found, done.stdout[-2000:] + done.stderr[-2000:]
    return int(found.group(1))


def test_every_fault_test_carries_the_fault_marker() -> None:
    everything = collected("tests/fault")
    assert everything > 0
    assert collected("-m", "fault", "tests/fault") == everything
    assert collected("-m", "not fault", "tests/fault") == 0
