"""One short, secret-free reason for a failed connection to a rendezvous, fit for a user.

Twisted's texts are either empty (an ``OpenSSL.SSL.Error`` prints as ``[]``; treq wraps the
real reason in ``ResponseNeverReceived.reasons``) or long ("Connection was refused by other
side: 111: Connection refused."). The commonest mistake, ``https://`` against a plain-HTTP
rendezvous, ends as a bare lost connection: we name it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["describeConnectError", "noHandshakeHint"]

TLS_HINT = (
    "the TLS handshake failed (is the rendezvous serving plain http? then use an http:// URL)"
)


def _secure(url: str) -> bool:
    return url.lower().startswith(("https://", "wss://"))


def noHandshakeHint(url: str) -> str:
    """For a secure ``url`` whose websocket never opened, ``"; no TLS handshake? (...plain
    http?...)"`` to append to the error (a TLS client against a plain-http port ends either in
    our timeout or when the server gives up); ``""`` for a plain one."""
    if not _secure(url):
        return ""
    return "; " + TLS_HINT.replace("the TLS handshake failed", "no TLS handshake?")


def _innermost(error: BaseException) -> BaseException:
    seen = 0
    while seen < 4:
        reasons: Any = getattr(error, "reasons", None)
        if not reasons:
            break
        inner = getattr(reasons[0], "value", None)
        if not isinstance(inner, BaseException):
            break
        error = inner
        seen += 1
    return error


def describeConnectError(error: BaseException, url: str) -> str:
    """Why connecting to ``url`` failed, in a few words."""
    from twisted.internet import error as neterror
    from twisted.internet.defer import CancelledError, TimeoutError

    inner = _innermost(error)
    secure = _secure(url)
    if isinstance(
        inner,
        TimeoutError | CancelledError | neterror.TimeoutError | neterror.ConnectingCancelledError,
    ):
        if secure:
            return "timed out; " + TLS_HINT.replace("the TLS handshake failed", "no TLS handshake")
        return "timed out"
    if isinstance(inner, neterror.ConnectionRefusedError):
        return "connection refused (is the rendezvous running, on this port?)"
    if isinstance(inner, neterror.DNSLookupError):
        return "cannot resolve the host name"
    if type(inner).__module__.startswith("OpenSSL") or "SSL" in type(inner).__name__:
        detail = str(inner).strip(" []")
        return TLS_HINT if not detail else f"{TLS_HINT}: {detail}"
    if secure and isinstance(inner, neterror.ConnectionLost | neterror.ConnectionDone):
        return TLS_HINT
    text = str(inner).strip()
    return text or type(inner).__name__
