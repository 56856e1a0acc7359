"""The harness client: the counterpart of the executor, through a rendezvous.

Connect with :func:`connectHarness`, open :class:`ExecSession` streams (one JSON-RPC session
each), call the executor's methods as Deferreds, follow processes with :class:`RemoteProcess`.
"""

from twisted_exec.harness.connection import HarnessConnection, connectHarness, harnessUrl
from twisted_exec.harness.environment import EnvironmentConnection, connectEnvironment
from twisted_exec.harness.errors import (
    AuthenticationError,
    CallError,
    ExecutorNotConnectedError,
    HarnessError,
    RendezvousUnreachableError,
    StreamError,
    UnknownExecutorError,
)
from twisted_exec.harness.listing import listExecutors
from twisted_exec.harness.remote_process import RemoteProcess
from twisted_exec.harness.session import INHERIT_ALL, ExecSession

__all__ = [
    "INHERIT_ALL",
    "AuthenticationError",
    "CallError",
    "EnvironmentConnection",
    "ExecSession",
    "ExecutorNotConnectedError",
    "HarnessConnection",
    "HarnessError",
    "RemoteProcess",
    "RendezvousUnreachableError",
    "StreamError",
    "UnknownExecutorError",
    "connectEnvironment",
    "connectHarness",
    "harnessUrl",
    "listExecutors",
]
