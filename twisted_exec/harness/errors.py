"""What the harness client raises; ``str()`` is a message fit for a user (never a token)."""

from __future__ import annotations

from typing import Any


class HarnessError(Exception):
    """Base class of every harness client error."""


class RendezvousUnreachableError(HarnessError):
    """No TCP/TLS connection to the rendezvous (refused, timed out, DNS, certificate)."""


class AuthenticationError(HarnessError):
    """The rendezvous refused the bearer token (401/403)."""


class UnknownExecutorError(HarnessError):
    """The rendezvous has never seen this executor id (404)."""


class ExecutorNotConnectedError(HarnessError):
    """The executor is known but has no websocket to the rendezvous right now (503)."""


class StreamError(HarnessError):
    """The relay stream ended (reset by the rendezvous or executor, or the websocket closed).

    Every call pending on the stream fails with it, and so does every later call on the same
    :class:`~twisted_exec.harness.session.ExecSession`: open a new session (and resume with
    ``initialize {resumeSessionId}`` if the executor kept the session).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"relay stream closed: {reason}")
        self.reason = reason


class CallError(HarnessError):
    """The executor answered a request with a JSON-RPC error."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method} failed ({code}): {message}")
        self.method = method
        self.code = code
        self.message = message
        self.data = data
