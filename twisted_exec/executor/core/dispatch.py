"""Calling a request's method and answering it: the request half of :mod:`.processor`.

:class:`RequestDispatch` resolves the method in the table the executor hands in, decodes its
params, checks the handshake state, admits ``fs/*`` calls through the session's gate and sends
the reply (or the JSON-RPC error) when the result is there. A request answered synchronously
costs no Deferred; a pending one costs one ``addCallbacks`` that replies, records the latency
and lets the queue move on (it used to be three callbacks and a semaphore's two Deferreds, a
good share of a relay call's CPU: bench/results/perfcpu-2026-12-04.md).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any, Protocol

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from twisted_exec.executor.core.dialect import Dialect
from twisted_exec.executor.core.session import Session
from twisted_exec.wire import jsonrpc
from twisted_exec.wire.errors import INTERNAL_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, RpcError

log = Logger()


class State(Enum):
    NEW = "new"  # nothing yet: only initialize is allowed
    INITIALIZING = "initializing"  # initialize answered, waiting for the initialized notification
    READY = "ready"


class MethodRow(Protocol):
    """What the processor needs of a method table row (``executor/methods/registry.Method``)."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def category(self) -> str | None: ...

    def decode(self, raw: object) -> Any: ...

    def call(self, context: Any, decoded: Any) -> object: ...


class MethodTable(Protocol):
    """The method table the executor hands in (``executor/methods``): core only dispatches."""

    def resolve(self, name: str, params: object, current: Dialect) -> MethodRow | None: ...


class _NotFound(Enum):
    NOT_FOUND = "not found"


#: What :meth:`RequestDispatch._dispatch` returns for a method nobody implements.
NOT_FOUND = _NotFound.NOT_FOUND
#: The method name an unknown method is timed under (``net/metrics.methodLabel``'s fold).
UNKNOWN_METHOD = "other"


def _releasing(result: object, gate: Any) -> object:
    """Give ``gate``'s token back (a callback that passes the result on)."""
    gate.release()
    return result


class RequestDispatch:
    """The request half of :class:`~.processor.ExecProcessor` (which supplies the rest)."""

    methods: MethodTable
    dialect: Dialect
    session: Session | None
    clock: Any
    onRequestDone: Callable[[str, float], None] | None
    _state: State
    _inFlight: int

    def _reply(self, requestId: jsonrpc.RequestId, result: object) -> None:
        raise NotImplementedError

    def _replyError(
        self, requestId: jsonrpc.RequestId, code: int, message: str, data: object = None
    ) -> None:
        raise NotImplementedError

    def _drain(self) -> None:
        raise NotImplementedError

    def _handleRequest(self, request: jsonrpc.Request) -> None:
        clock = self.clock if self.onRequestDone is not None else None
        started = clock.seconds() if clock is not None else None
        pending = self._dispatch(request)
        if pending is None or pending is NOT_FOUND:
            # An unknown method is timed as "other": a peer inventing method names must not
            # grow the latency histogram's children (one per name) without bound.
            self._observe(request.method if pending is None else UNKNOWN_METHOD, started)
            return
        self._inFlight += 1
        pending.addCallbacks(
            self._succeeded,
            self._failed,
            callbackArgs=(request, started),
            errbackArgs=(request, started),
        )

    def _succeeded(self, result: object, request: jsonrpc.Request, started: float | None) -> None:
        try:
            self._reply(request.id, result)
        finally:
            self._finished(request.method, started)

    def _failed(self, failure: Failure, request: jsonrpc.Request, started: float | None) -> None:
        try:
            if failure.check(RpcError):
                err = failure.value
                assert isinstance(err, RpcError)
                self._replyError(request.id, err.code, err.message, err.data)
            else:
                log.failure("request {id} failed", failure, id=request.id)
                self._replyError(request.id, INTERNAL_ERROR, str(failure.value))
        finally:
            self._finished(request.method, started)

    def _finished(self, method: str, started: float | None) -> None:
        self._observe(method, started)
        self._inFlight -= 1
        self._drain()

    def _observe(self, method: str, started: float | None) -> None:
        observe = self.onRequestDone
        if observe is not None and started is not None:
            observe(method, self.clock.seconds() - started)

    def _dispatch(self, request: jsonrpc.Request) -> Deferred[Any] | _NotFound | None:
        """Call the method: ``None`` once answered (``NOT_FOUND`` when there is no such
        method), else the Deferred of its result."""
        method = self.methods.resolve(request.method, request.params, self.dialect)
        if method is None:
            self._replyError(
                request.id,
                METHOD_NOT_FOUND,
                f"exec-server stub does not implement `{request.method}` yet",
            )
            return NOT_FOUND
        if method.dialect > self.dialect:
            self._useDialect(method.dialect)
        gate: Any = None
        try:
            decoded = method.decode(request.params)
            if method.category is not None:
                self._checkReady(method.category)
            gate = self._fsGate() if method.category == "filesystem" else None
            if gate is not None:
                # At most Limits.maxFsInFlight fs calls of one session on the pool at once.
                acquired = gate.acquire()
                if not acquired.called:  # every token taken: this call waits its turn
                    waiting, gate = gate, None
                    call = acquired.addCallback(lambda _: self._callNow(method, decoded))
                    return call.addBoth(_releasing, waiting)
            outcome = method.call(self, decoded)
        except RpcError as err:
            if gate is not None:
                gate.release()
            self._replyError(request.id, err.code, err.message, err.data)
            return None
        except Exception as err:
            if gate is not None:
                gate.release()
            log.failure("{method} failed", method=request.method)
            self._replyError(request.id, INTERNAL_ERROR, str(err))
            return None
        if hasattr(outcome, "__await__") and not isinstance(outcome, Deferred):
            outcome = ensureDeferred(outcome)  # type: ignore[arg-type]
        if isinstance(outcome, Deferred):
            return outcome if gate is None else outcome.addBoth(_releasing, gate)
        if gate is not None:
            gate.release()
        self._reply(request.id, outcome)
        return None

    def _fsGate(self) -> Any:
        resources = self.session.resources if self.session is not None else None
        return getattr(resources, "fsGate", None)

    def _callNow(self, method: MethodRow, decoded: Any) -> object:
        outcome = method.call(self, decoded)
        if hasattr(outcome, "__await__") and not isinstance(outcome, Deferred):
            return ensureDeferred(outcome)  # type: ignore[arg-type]
        return outcome

    def _checkReady(self, category: str) -> None:
        if self._state is State.NEW:
            raise RpcError(
                INVALID_REQUEST, f"client must call initialize before using {category} methods"
            )
        if self._state is State.INITIALIZING:
            raise RpcError(
                INVALID_REQUEST, f"client must send initialized before using {category} methods"
            )

    def _useDialect(self, dialect: Dialect) -> None:
        """The session spoke a newer dialect: answer it in that one from now on."""
        self.dialect = dialect
        if self.session is not None:
            self.session.dialect = dialect
