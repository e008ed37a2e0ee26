"""kubectl session prints no control characters that came from the cluster (no cluster)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from kubectl_session import render
from kubectl_session.podstream import CleanSink

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
EVIL = "\x1b]0;pwned\x07\x1b[2J\x9b1m\u202e"


def hostile() -> dict[str, object]:
    return {
        "metadata": {"name": "s" + EVIL, "namespace": "demo"},
        "spec": {"project": "demo" + EVIL, "branch": "b"},
        "status": {
            "phase": "Active" + EVIL,
            "webUI": "Running\x1b[31m",
            "previewURL": "http://x\x1b[8m/",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "ExecFailed" + EVIL,
                    "message": "line one\nline two \x1b[31mred\x1b[0m",
                }
            ],
        },
    }


def controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F]


def test_describe_prints_no_controls_and_keeps_fields_on_their_line() -> None:
    event = {"type": "Warning", "reason": "PushFailed", "message": "denied\x1b[1A\rover"}
    text = render.describe(hostile(), [event], NOW)
    assert controls(text) == [] and "\u202e" not in text
    assert "line one line two red" in text
    assert "denied over" in text
    assert "Phase:          Active]0;pwned" not in text  # the OSC went whole
    assert "Phase:          Active1m" in text


def test_list_prints_no_controls_and_stays_aligned() -> None:
    text = render.session_table([hostile()], NOW)
    assert controls(text) == []
    header, row = text.splitlines()
    assert row.index("demo") == header.index("PROJECT")


def test_data_output_keeps_the_values_escaped() -> None:
    # -o json / -o yaml are data: exact values, escaped by the format.
    assert "\x1b" not in render.data(hostile(), "json")
    assert "\x1b" not in render.data(hostile(), "yaml")


@pytest.mark.parametrize("size", [1, 2, 3, 64])
def test_clean_sink_strips_sequences_split_between_frames(size: int) -> None:
    data = "log \x1b[32mgreen\x1b[0m ✓ \x1b]0;title\x07done\r\n".encode()
    sink = io.BytesIO()
    clean = CleanSink(sink)
    for i in range(0, len(data), size):
        clean.write(data[i : i + size])
    clean.finish()
    assert sink.getvalue().decode() == "log green ✓ done\n"
