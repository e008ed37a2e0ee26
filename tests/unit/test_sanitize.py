"""Text from pods: credentials redacted, control characters stripped (pure functions)."""

from __future__ import annotations

import pytest

from rdev_api.execresult import ExecError, ExecResult
from rdev_api.sanitize import StreamCleaner, clean, one_line, redact, strip_controls


# Redaction -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "fatal: unable to access 'https://user:s3cr3t@git.example.com/x.git/'",
            "fatal: unable to access 'https://***@git.example.com/x.git/'",
        ),
        ("pushing to https://ghp-token@github.com/o/r", "pushing to https://***@github.com/o/r"),
        ("ssh://git:pw@host:22/repo", "ssh://***@host:22/repo"),
        ("GET /api?access_token=s3cr3t&page=2", "GET /api?access_token=***&page=2"),
        ("token=s3cr3t", "token=***"),
        ("TOKEN: s3cr3t rest", "TOKEN: *** rest"),
        ("password=s3cr3t user=bob", "password=*** user=bob"),
        ('db_password="two words"', "db_password=***"),
        ("client_secret='s3cr3t'", "client_secret=***"),
        ("> Authorization: Bearer s3cr3t.jwt", "> Authorization: ***"),
        ("Authorization: Basic dXNlcjpzM2NyM3Q=", "Authorization: ***"),
        ("authorization: token s3cr3t", "authorization: ***"),
        (
            "http.extraheader=AUTHORIZATION: bearer s3cr3t\nnext line",
            "http.extraheader=AUTHORIZATION: ***\nnext line",
        ),
        ("Proxy-Authorization: Negotiate s3cr3t", "Proxy-Authorization: ***"),
        ("curl -H 'Bearer s3cr3t-abc'", "curl -H 'Bearer ***'"),
        ("used ghp_" + "a" * 36 + " here", "used *** here"),
        ("glpat-" + "b" * 20, "***"),
    ],
)
def test_redacts_credentials(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert "s3cr3t" not in clean(text)


@pytest.mark.parametrize(
    "text",
    [
        "error: failed to push some refs to 'https://github.com/o/r.git'",
        "Password for 'https://bob@host': ",  # git's prompt names no password
        "hint: Updates were rejected because the tip of your branch is behind",
        "3 tokens left, authorization failed",
        "exit code 128",
    ],
)
def test_leaves_ordinary_text(text: str) -> None:
    assert clean(text) == text.replace("bob@", "***@")


def test_redaction_is_idempotent() -> None:
    text = "https://u:p@h/x token=t Authorization: Basic x"
    assert redact(redact(text)) == redact(text)


# Control characters ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\x1b[31mred\x1b[0m plain", "red plain"),
        ("\x1b[1;38;5;208mbold\x1b[m", "bold"),
        ("\x1b]0;evil title\x07after", "after"),  # OSC ended by BEL
        ("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"),  # hyperlink, ended by ST
        ("\x1b]52;c;Y2xpcA==\x07copied", "copied"),  # clipboard write
        ("\x1bPdevice\x1b\\ok", "ok"),  # DCS
        ("a\x1b(Bb\x1bMc\x1b7d", "abcd"),  # charset, reverse index, save cursor
        ("bell\x07 back\x08space nul\x00 del\x7f", "bell backspace nul del"),
        ("c1 \x9b31m csi \x85 nel", "c1 31m csi  nel"),  # 8-bit CSI: its ESC-less form goes
        ("tab\tand\nnewline stay", "tab\tand\nnewline stay"),
        ("progress 10%\rprogress 99%\r\ndone", "progress 10%\nprogress 99%\ndone"),
        ("unterminated \x1b]0;title", "unterminated ]0;title"),
        ("lone escape \x1b", "lone escape "),
        # Bidi overrides and isolates reorder what is shown: they go. Marks stay.
        ("access \u202egnp.exe\u202c level", "access gnp.exe level"),
        ("\u2066isolate\u2069 \u200emark", "isolate \u200emark"),
        ("naïve — 日本語 ✓", "naïve — 日本語 ✓"),
    ],
)
def test_strips_controls(text: str, expected: str) -> None:
    assert strip_controls(text) == expected
    assert strip_controls(expected) == expected


def test_controls_go_before_redaction() -> None:
    # An escape sequence inside a secret must not hide it from the redaction.
    assert clean("tok\x1b[0men=s3cr3t") == "token=***"


def test_one_line() -> None:
    assert one_line("a\nb\t c \x1b[2Jd") == "a b  c d"
    assert one_line("") == ""


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7])
def test_stream_cleaner_joins_split_sequences(size: int) -> None:
    text = "start \x1b[31mred\x1b[0m \x1b]0;title\x07line\r\nnext\rover \x1b"
    cleaner = StreamCleaner()
    out = "".join(cleaner.feed(text[i : i + size]) for i in range(0, len(text), size))
    out += cleaner.finish()
    assert out == strip_controls(text) == "start red line\nnext\nover "


def test_stream_cleaner_holds_back_a_bounded_amount() -> None:
    cleaner = StreamCleaner()
    assert cleaner.feed("x\x1b]0;") == "x"
    flood = "y" * (StreamCleaner.HOLD + 10)
    assert cleaner.feed(flood) == "]0;" + flood  # a stray ESC never stops the output


# Where pod text leaves: describe() and ExecError --------------------------------------
def test_describe_redacts_and_strips() -> None:
    result = ExecResult(
        128,
        "",
        "remote: mirror https://ci:s3cr3t@mirror.example/x.git failed\n"
        "remote: \x1b[31mAuthorization: Bearer s3cr3t\x1b[0m\n"
        "fatal: \x1b]0;pwned\x07push declined\n",
    )
    text = result.describe()
    assert "s3cr3t" not in text and "\x1b" not in text and "pwned" not in text
    assert text == (
        "exit code 128: remote: mirror https://***@mirror.example/x.git failed"
        " | remote: Authorization: *** | fatal: push declined"
    )


def test_describe_redacts_before_cutting() -> None:
    # The 400-character cut could start inside the URL, past its scheme.
    stderr = "x" * 390 + " https://user:s3cr3t@host/x.git"
    assert "s3cr3t" not in ExecResult(1, "", stderr).describe()


def test_exec_error_message_is_clean() -> None:
    exc = ExecError("exec failed: https://u:s3cr3t@h \x1b[2J")
    assert str(exc) == "exec failed: https://***@h "
