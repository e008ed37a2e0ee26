"""Text from pods made safe to show: no control characters, nothing credential-shaped.

git and the tools around it print what they were given: a remote's URL with a
token in it, an ``Authorization`` header (``GIT_CURL_VERBOSE``, a hook that
echoes its config), escape sequences that recolour, retitle or rewrite a
terminal. Whatever reaches status, Events, logs or a person's terminal goes
through here first. Pure functions; ``redact`` and ``strip_controls`` are
idempotent.
"""

from __future__ import annotations

import re

REDACTED = "***"

# Escape sequences as terminals read them: CSI (ESC [ ... final), the string
# commands OSC/DCS/SOS/PM/APC (up to BEL or ESC \), and the short nF/Fp/Fe/Fs
# forms (ESC, intermediates, one final byte). An unterminated string command is
# left to the character filter below: its ESC goes and the rest is plain text.
_ESCAPE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1b[ -/]*[0-OQ-WYZ\\`-~]"
)
# C0 except tab and newline, DEL, C1, and the bidi embeddings, overrides and
# isolates (they reorder what is shown, "Trojan Source"); a lone CR would let a
# line overwrite itself, so it becomes a newline.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CR = re.compile(r"\r\n?")

_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")
_AUTH_HEADER = re.compile(r"(?i)\b((?:proxy-)?authorization\s*[:=]\s*)[^\n]*")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[\w.~+/-]+=*")
# Tokens that say what they are by their prefix (GitHub, GitLab).
_TOKEN = re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|glpat-[\w-]{20,})")
_KEY_VALUE = re.compile(
    r"(?i)\b([\w-]*(?:token|password|passwd|secret|api[_-]?key)\s*[=:]\s*)"
    r"(\"[^\"\n]*\"|'[^'\n]*'|[^\s&;,'\"]+)"
)


def strip_controls(text: str) -> str:
    """Drop escape sequences and control characters; keep tabs and newlines."""
    return _CONTROL.sub("", _ESCAPE.sub("", _CR.sub("\n", text)))


def redact(text: str) -> str:
    """Replace what looks like a credential with ``***``."""
    text = _URL_USERINFO.sub(rf"\g<1>{REDACTED}@", text)
    text = _AUTH_HEADER.sub(rf"\g<1>{REDACTED}", text)
    text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
    text = _TOKEN.sub(REDACTED, text)
    return _KEY_VALUE.sub(rf"\g<1>{REDACTED}", text)


def clean(text: str) -> str:
    """Both: controls first, so an escape sequence cannot split a secret past ``redact``."""
    return redact(strip_controls(text))


def one_line(text: str) -> str:
    """Control-free text on one line (spacing kept), for a table cell or a one-line field."""
    return strip_controls(text).replace("\n", " ").replace("\t", " ")


class StreamCleaner:
    """``strip_controls`` for text that arrives in pieces (a log being followed).

    An escape sequence or a CR/LF pair split between two pieces is held back
    until the next one completes it (at most ``HOLD`` characters, so a stray
    ESC cannot stop the output).
    """

    HOLD = 4096

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, text: str) -> str:
        text = self._pending + text
        cut = len(text)
        if text.endswith("\r"):
            cut -= 1
        esc = text.rfind("\x1b", max(0, len(text) - self.HOLD))
        if esc >= 0 and not _ESCAPE.match(text, esc):
            cut = min(cut, esc)
        self._pending = text[cut:]
        return strip_controls(text[:cut])

    def finish(self) -> str:
        text, self._pending = self._pending, ""
        return strip_controls(text)
