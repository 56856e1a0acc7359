"""Run one blocking filesystem call on the offload pool, with the reference's error mapping.

Every new 0.171 fs resource (handles, walk, metadata, watches) does its system calls through
:class:`BlockingRunner`, never on the reactor thread. An ``OSError`` becomes the reference's
JSON-RPC error inside the worker (``<musl strerror> (os error N)``, -32004/-32600/-32603 by
kind), so the reactor only forwards a ready :class:`RpcError`.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from twisted_exec.compat.oserror import fromOSError
from twisted_exec.wire.errors import INVALID_REQUEST, RpcError

_P = ParamSpec("_P")
_T = TypeVar("_T")

NUL_IN_PATH = "file name contained an unexpected NUL byte"


class CallInThread(Protocol):
    """What ``deferToThreadPool`` needs of a pool (``OffloadPool`` or Twisted's ``ThreadPool``)."""

    def callInThreadWithCallback(
        self, onResult: Callable[[bool, Any], None], func: Callable[..., Any], *args: Any
    ) -> None: ...


def mapped(f: Callable[_P, _T]) -> Callable[_P, _T]:
    """``f`` with OS errors turned into the reference's ``RpcError`` (runs in the worker)."""

    def run(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return f(*args, **kwargs)
        except OSError as e:
            raise fromOSError(e) from None
        except OverflowError:
            # an offset past what off_t holds: the kernel's answer for a negative i64 offset
            raise fromOSError(OSError(errno.EINVAL, "Invalid argument")) from None
        except ValueError as e:
            if "null byte" in str(e):
                raise RpcError(INVALID_REQUEST, NUL_IN_PATH) from None
            raise

    return run


class BlockingRunner:
    """``run(f, *args)`` → a Deferred of ``f(*args)`` computed on ``pool``."""

    def __init__(self, reactor: Any, pool: CallInThread) -> None:
        self._reactor = reactor
        self._pool = pool

    def run(self, f: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> Deferred[_T]:
        return onPool(self._reactor, self._pool, mapped(f), *args, **kwargs)

    def runQuick(self, f: Callable[..., _T], *args: Any) -> Deferred[_T]:
        """:meth:`run` for a metadata lookup, batched with the others of the turn."""
        return onPoolBatched(self._reactor, self._pool, mapped(f), *args)


def onPool(
    reactor: Any, pool: CallInThread, f: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
) -> Deferred[_T]:
    """A Deferred of ``f(*args)`` computed on ``pool``: by ``OffloadPool.deferToPool`` (one
    batched reactor wake-up, offload.py) when the pool has it and the call has no keywords,
    else by Twisted's ``deferToThreadPool``."""
    deferToPool = getattr(pool, "deferToPool", None)
    if deferToPool is not None and not kwargs:
        return cast("Deferred[_T]", deferToPool(reactor, f, *args))
    return deferToThreadPool(reactor, cast(ThreadPool, pool), f, *args, **kwargs)


def onPoolBatched(
    reactor: Any, pool: CallInThread, f: Callable[..., _T], *args: Any
) -> Deferred[_T]:
    """:func:`onPool` for a quick call (a metadata lookup): ``OffloadPool.deferBatched`` runs
    it in one job with the other quick calls of this reactor turn; any other pool, or a
    reactor without ``callLater``, runs it as :func:`onPool` does."""
    deferBatched = getattr(pool, "deferBatched", None)
    if deferBatched is not None and hasattr(reactor, "callLater"):
        return cast("Deferred[_T]", deferBatched(reactor, f, *args))
    return onPool(reactor, pool, f, *args)


__all__ = ["NUL_IN_PATH", "BlockingRunner", "CallInThread", "mapped", "onPool", "onPoolBatched"]
