"""Bounded execs without a cluster: the pod-side timeout argv, its verdict, the output cap."""

from __future__ import annotations

import pytest

from rdev_api.execresult import ERROR, STDERR, STDOUT, Frames
from session_operator.podexec import GRACE_S, KILL_AFTER_S, bounded, timed_out
from session_operator.settings import format_size


def test_bounded_wraps_the_argv_once_in_timeout() -> None:
    argv, deadline = bounded(["sh", "-c", "git fetch", "sh", "--", "x y"], 60)
    # Short options and whole seconds: GNU coreutils, busybox >= 1.35 and toybox read it.
    timeout = ["timeout", "-s", "TERM", "-k", "3", "60"]
    assert argv == [*timeout, "sh", "-c", "git fetch", "sh", "--", "x y"]
    assert deadline == 60 + KILL_AFTER_S + GRACE_S  # just after the pod's KILL


def test_bounded_rounds_up_to_whole_seconds() -> None:
    assert bounded(["true"], 2.2)[0][5] == "3"
    assert bounded(["true"], 0.1)[0][5] == "1"


def test_bounded_leaves_values_as_arguments() -> None:
    # A value that looks like an option of timeout's stays after the duration.
    argv, _ = bounded(["-k", "1"], 5)
    assert argv[6:] == ["-k", "1"]


@pytest.mark.parametrize(
    ("code", "elapsed", "expected"),
    [
        (124, 0.5, True),  # GNU and busybox: timed out
        (137, 10.0, True),  # killed after -k, at the deadline
        (143, 10.0, True),  # busybox: TERM reached the command itself
        (143, 1.0, False),  # TERM from someone else, long before the deadline
        (0, 10.0, False),
        (1, 10.0, False),
        (128, 10.0, False),
    ],
)
def test_timed_out(code: int, elapsed: float, expected: bool) -> None:
    assert timed_out(code, elapsed, 10.0) is expected


def frame(channel: int, data: bytes) -> bytes:
    return bytes([channel]) + data


def test_frames_collect_channels() -> None:
    frames = Frames(4096)
    assert frames.add(frame(STDOUT, b"out "))
    assert frames.add(frame(STDERR, b"err"))
    assert frames.add(frame(STDOUT, "é".encode()))
    assert frames.add(b"\x01")  # an empty frame, as the server sends at the start
    assert frames.add(frame(9, b"unknown channel"))
    assert frames.add(frame(ERROR, b'{"status":"Failure","message":"exit code 7"}'))
    result = frames.result()
    assert (result.returncode, result.stdout, result.stderr) == (7, "out é", "err")


def test_frames_stop_at_the_limit_and_keep_no_more() -> None:
    frames = Frames(10)
    assert frames.add(frame(STDOUT, b"12345"))
    assert frames.add(frame(STDERR, b"67890"))  # exactly the limit
    assert not frames.add(frame(STDOUT, b"x"))
    assert frames.size == 11
    result = frames.result()
    assert result.stdout + result.stderr == "1234567890"


def test_frames_refuse_one_huge_frame() -> None:
    frames = Frames(4096)
    assert not frames.add(frame(STDOUT, b"x" * 5000))
    assert frames.result().stdout == ""


@pytest.mark.parametrize(
    ("size", "text"),
    [(1 << 20, "1 MiB"), (4096, "4 KiB"), (3 << 30, "3 GiB"), (5000, "5000 bytes")],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text
