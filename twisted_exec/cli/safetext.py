"""What ``codex-exec`` prints of remote or user-supplied text, made safe for a terminal and a log.

- :func:`escapeControl`: a remote file name, an executor id or an error message can carry
  terminal escape sequences (``ESC ]0;...BEL`` retitles a window, others move the cursor, rewrite
  the screen or, on some terminals, answer back into the input). C0 and C1 controls, DEL and the
  bidirectional overrides (which reorder what the reader sees) are shown as ``\\xNN`` /
  ``\\uNNNN``; everything else, non-ASCII letters included, is left alone.
- :func:`redactUrls`: every URL in a message loses its userinfo (``user:TOKEN@``), query string
  and fragment (``net/urls.redactUrl``).

Not escaped, by design: the bytes of ``cat`` and of ``run``'s output, which are the remote
file's and command's own output (as ``ssh`` passes them), and a ``--tty`` session.
"""

from __future__ import annotations

import re

from twisted_exec.net.urls import redactUrl

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escapeControl(text: str) -> str:
    """``text`` with every control or direction-override character written as an escape."""
    return _UNSAFE.sub(_escape, text)


def redactUrls(text: str) -> str:
    """``text`` with each URL's userinfo, query and fragment removed."""

    def redact(match: re.Match[str]) -> str:
        url = match.group()
        trailing = ""
        while url and url[-1] in ".,;:)]}":  # sentence punctuation after a URL
            trailing = url[-1] + trailing
            url = url[:-1]
        return redactUrl(url) + trailing

    return _URL.sub(redact, text)


def safe(text: str) -> str:
    """Both: what every ``codex-exec`` error line goes through."""
    return escapeControl(redactUrls(text))
