"""The lifecycle of one ``http/request``, as a typed state machine.

Why a machine
-------------
An exchange goes through hops (redirects whose bodies are read away), then a body, buffered or
streamed; a deadline (``timeoutMs``) and the session's end may cut in at any point, and each phase
winds down differently. Kept as flags (in flight, body protocol, timed out, closed) the phases
were implicit; here each is a state, and what the deadline and the session's end do in each one
is written next to it:

===========  =================================================================================
idle         built, not started (the first state)
sending      a hop's request is in flight (the state's data: its Deferred)
discarding   a redirect's body is read away so its connection can be reused (data: the protocol)
collecting   buffered mode: the body is read whole (data: the collector)
replied      streamed mode: the reply (empty body) left; the body protocol connects next turn
streaming    streamed mode: ``bodyDelta`` notifications flow (data: the streamer)
expired      the deadline passed: the phase that was running winds down to a ``BODY_ERROR`` or
             "error sending request"
cancelled    the session ended: nothing more is sent (the result Deferred still fires)
done         the result was given, or the stream's last delta (``done: true``) sent
failed       the result failed
===========  =================================================================================

Every input is accepted in every state; one that cannot matter there is ignored, as the flag code
ignored it. All inputs return ``None``: Automat queues an input that arrives while a transition
runs (a fake agent's Deferred fires at once, a body may be delivered whole inside
``deliverBody``), and only ``None``-returning inputs may be queued. The inputs, the shared core
and the states' data: :mod:`.http_exchange_core`.

One difference from the flag code: a session that ends while a redirect's body is read away no
longer sends the next hop's request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol as BodyProtocol
from twisted.python.failure import Failure
from twisted.web.iweb import IResponse

from twisted_exec.compat.base64strict import encodeBase64
from twisted_exec.executor.core.lazymachine import LazyMachine
from twisted_exec.executor.resources.http_agent import (
    BODY_ERROR,
    _BodyCollector,
    _BodyStreamer,
    _Discard,
    _producer,
)
from twisted_exec.executor.resources.http_exchange_core import (
    DELTA_METHOD,
    ExchangeCore,
    ExchangeEvents,
    ExchangeOwner,
    enterCollecting,
    enterDiscarding,
    enterSending,
    enterStreaming,
    headersResult,
)
from twisted_exec.executor.resources.http_policy import Prepared
from twisted_exec.wire.errors import internalError


def ignore(m: ExchangeEvents, core: ExchangeCore, *args: object, **kwargs: object) -> None:
    """An event that cannot matter in the state it arrives in (the flag code ignored it too)."""


def _buildMachine() -> Callable[[ExchangeCore], ExchangeEvents]:
    from automat import TypeMachineBuilder  # here: importing Automat costs ~10 ms

    builder = TypeMachineBuilder(ExchangeEvents, ExchangeCore)
    idle = builder.state("idle")
    sending = builder.state("sending", enterSending)
    discarding = builder.state("discarding", enterDiscarding)
    collecting = builder.state("collecting", enterCollecting)
    replied = builder.state("replied")
    streaming = builder.state("streaming", enterStreaming)
    expired = builder.state("expired")
    cancelled = builder.state("cancelled")
    done = builder.state("done")
    failed = builder.state("failed")
    E = ExchangeEvents

    # -- the header phase ---------------------------------------------------------------------
    @idle.upon(E.start).to(sending)
    def started(m: ExchangeEvents, core: ExchangeCore) -> None:
        if core.prepared.timeoutMs is not None:
            core.timer = core.owner.reactor.callLater(core.prepared.timeoutMs / 1000.0, m.timeout)

    sending.upon(E.redirected, nodata=True).to(discarding)(ignore)
    discarding.upon(E.redirectRead, nodata=True).to(sending)(ignore)

    # (Automat hands a data state's data to a transition into a plain state even with
    # nodata=True, so those implementations take it: ``_data``.)
    @expired.upon(E.redirectLimit).to(failed)
    def tooManyRedirects(m: ExchangeEvents, core: ExchangeCore) -> None:
        core.fail(
            internalError(
                f"http/request failed: error following redirect for url ({core.hop.url.display()})"
            )
        )

    @discarding.upon(E.redirectLimit).to(failed)
    def tooManyRedirectsRead(m: ExchangeEvents, core: ExchangeCore, _data: _Discard) -> None:
        tooManyRedirects(m, core)

    @expired.upon(E.requestFailed).to(failed)
    @expired.upon(E.bodyFailed).to(failed)
    def requestFailed(m: ExchangeEvents, core: ExchangeCore, failure: Failure) -> None:
        core.fail(core.requestError(failure))

    @sending.upon(E.requestFailed).to(failed)
    def hopFailed(
        m: ExchangeEvents, core: ExchangeCore, _data: Deferred[Any], failure: Failure
    ) -> None:
        requestFailed(m, core, failure)

    @collecting.upon(E.bodyFailed).to(failed)
    def bodyFailed(
        m: ExchangeEvents, core: ExchangeCore, _data: _BodyCollector, failure: Failure
    ) -> None:
        requestFailed(m, core, failure)

    # -- buffered ---------------------------------------------------------------------------
    sending.upon(E.answered, nodata=True).to(collecting)(ignore)

    @cancelled.upon(E.bodyCollected).loop()
    def collected(m: ExchangeEvents, core: ExchangeCore, body: bytes) -> None:
        # (after the session's end too, as the flag code: nobody reads it then)
        if core.answer is None:  # no answer was being read: cannot happen, settle anyway
            core.fail(core.sendingError())
            return
        core.succeed({**core.answer, "bodyBase64": encodeBase64(body)})

    @collecting.upon(E.bodyCollected).to(done)
    def collectedWhole(
        m: ExchangeEvents, core: ExchangeCore, _data: _BodyCollector, body: bytes
    ) -> None:
        collected(m, core, body)

    # -- streamed -----------------------------------------------------------------------------
    @sending.upon(E.answeredStreaming).to(replied)
    def reply(
        m: ExchangeEvents, core: ExchangeCore, _data: Deferred[Any], response: IResponse
    ) -> None:
        # The reply must leave before the first delta: connect the body protocol only once the
        # result Deferred (returned to the processor) has fired and sent it.
        core.owner.reactor.callLater(0, m.startStreaming, response)
        core.result.callback({**headersResult(response), "bodyBase64": ""})

    replied.upon(E.startStreaming).to(streaming)(ignore)

    @streaming.upon(E.bodyDelta, nodata=True).loop()
    @expired.upon(E.bodyDelta).loop()
    def delta(m: ExchangeEvents, core: ExchangeCore, data: bytes) -> None:
        core.notifyDelta(data, done=False, error=None)

    @streaming.upon(E.streamEnded).to(done)
    def streamEnded(
        m: ExchangeEvents, core: ExchangeCore, _data: _BodyStreamer, error: str | None
    ) -> None:
        core.notifyDelta(b"", done=True, error=error)
        core.close()

    # -- the deadline -------------------------------------------------------------------------
    @sending.upon(E.timeout).to(expired)
    def timeoutSending(m: ExchangeEvents, core: ExchangeCore, inFlight: Deferred[Any]) -> None:
        core.timer = None
        inFlight.cancel()

    def timeoutReading(m: ExchangeEvents, core: ExchangeCore, body: BodyProtocol) -> None:
        core.timer = None
        _producer(body).stopProducing()

    discarding.upon(E.timeout).to(expired)(timeoutReading)
    collecting.upon(E.timeout).to(expired)(timeoutReading)
    streaming.upon(E.timeout).to(expired)(timeoutReading)

    @replied.upon(E.timeout).to(expired)
    def timeoutReplied(m: ExchangeEvents, core: ExchangeCore) -> None:
        core.timer = None

    # (a response after the deadline cannot come: the request was cancelled; settle anyway)
    def expiredSending(m: ExchangeEvents, core: ExchangeCore, *a: object, **k: object) -> None:
        core.fail(core.sendingError())

    expired.upon(E.redirectRead).to(failed)(expiredSending)
    expired.upon(E.redirected).to(failed)(expiredSending)
    expired.upon(E.answered).to(failed)(expiredSending)
    expired.upon(E.answeredStreaming).to(failed)(expiredSending)

    @expired.upon(E.bodyCollected).to(failed)
    def expiredCollected(m: ExchangeEvents, core: ExchangeCore, body: bytes) -> None:
        core.fail(internalError(f"failed to read http/request response body: {BODY_ERROR}"))

    @expired.upon(E.startStreaming).loop()
    def expiredStreaming(m: ExchangeEvents, core: ExchangeCore, response: IResponse) -> None:
        # Connected only to end at once: the stream's last delta carries the error.
        _producer(enterStreaming(m, core, response)).stopProducing()

    @expired.upon(E.streamEnded).to(done)
    def expiredEnded(m: ExchangeEvents, core: ExchangeCore, error: str | None) -> None:
        core.notifyDelta(b"", done=True, error=BODY_ERROR)
        core.close()

    # -- the session's end --------------------------------------------------------------------
    @idle.upon(E.cancel).to(cancelled)
    @replied.upon(E.cancel).to(cancelled)
    @expired.upon(E.cancel).to(cancelled)
    def cancelIdle(m: ExchangeEvents, core: ExchangeCore) -> None:
        core.close()

    @sending.upon(E.cancel).to(cancelled)
    def cancelSending(m: ExchangeEvents, core: ExchangeCore, inFlight: Deferred[Any]) -> None:
        core.close()
        inFlight.cancel()

    def cancelReading(m: ExchangeEvents, core: ExchangeCore, body: BodyProtocol) -> None:
        core.close()
        _producer(body).stopProducing()

    discarding.upon(E.cancel).to(cancelled)(cancelReading)
    collecting.upon(E.cancel).to(cancelled)(cancelReading)

    @streaming.upon(E.cancel).to(cancelled)
    def cancelStreaming(m: ExchangeEvents, core: ExchangeCore, streamer: _BodyStreamer) -> None:
        core.close()
        streamer.abort()

    # What was under way when the session ended still settles the result (nobody reads it).
    @cancelled.upon(E.requestFailed).loop()
    @cancelled.upon(E.bodyFailed).loop()
    def cancelledFailure(m: ExchangeEvents, core: ExchangeCore, failure: Failure) -> None:
        core.fail(core.requestError(failure))

    def cancelledHop(m: ExchangeEvents, core: ExchangeCore, *a: object, **k: object) -> None:
        core.fail(core.sendingError())

    cancelled.upon(E.redirected).loop()(cancelledHop)
    cancelled.upon(E.redirectRead).loop()(cancelledHop)
    cancelled.upon(E.redirectLimit).loop()(cancelledHop)
    cancelled.upon(E.answered).loop()(cancelledHop)
    cancelled.upon(E.answeredStreaming).loop()(cancelledHop)

    @cancelled.upon(E.startStreaming).loop()
    @done.upon(E.startStreaming).loop()
    @failed.upon(E.startStreaming).loop()
    def dropBody(m: ExchangeEvents, core: ExchangeCore, response: IResponse) -> None:
        discard = _Discard()
        response.deliverBody(discard)
        _producer(discard).stopProducing()

    # -- flow control -------------------------------------------------------------------------
    def pause(m: ExchangeEvents, core: ExchangeCore, body: BodyProtocol) -> None:
        _producer(body).pauseProducing()

    def resume(m: ExchangeEvents, core: ExchangeCore, body: BodyProtocol) -> None:
        _producer(body).resumeProducing()

    discarding.upon(E.pause).loop()(pause)
    collecting.upon(E.pause).loop()(pause)
    streaming.upon(E.pause).loop()(pause)
    discarding.upon(E.resume).loop()(resume)
    collecting.upon(E.resume).loop()(resume)
    streaming.upon(E.resume).loop()(resume)

    # -- ignored: what cannot matter in a state -------------------------------------------------
    def ignoring(state: Any, *events: Callable[..., None], nodata: bool = False) -> None:
        for event in events:
            upon = state.upon(event, nodata=True) if nodata else state.upon(event)
            upon.loop()(ignore)

    hop = (E.redirected, E.redirectRead, E.redirectLimit)
    answer = (E.answered, E.answeredStreaming, E.requestFailed)
    buffered = (E.bodyCollected, E.bodyFailed)
    streamed = (E.startStreaming, E.bodyDelta, E.streamEnded)
    control = (E.timeout, E.pause, E.resume)
    ignoring(idle, *hop, *answer, *buffered, *streamed, *control)
    ignoring(sending, E.start, E.redirectRead, E.redirectLimit, E.pause, E.resume, nodata=True)
    ignoring(sending, *buffered, *streamed, nodata=True)
    ignoring(discarding, E.start, E.redirected, *answer, *buffered, *streamed, nodata=True)
    ignoring(collecting, E.start, *hop, *answer, *streamed, nodata=True)
    ignoring(streaming, E.start, E.startStreaming, *hop, *answer, *buffered, nodata=True)
    ignoring(replied, E.start, *hop, *answer, *buffered, E.bodyDelta, E.streamEnded)
    ignoring(replied, E.pause, E.resume)
    ignoring(expired, E.start, *control)
    ignoring(cancelled, E.start, E.cancel, E.bodyDelta, E.streamEnded, *control)
    for over in (done, failed):
        ignoring(over, E.start, E.cancel, *hop, *answer, *buffered, *control)
        ignoring(over, E.bodyDelta, E.streamEnded)

    for plain in (idle, replied, expired, cancelled, done, failed):
        plain.upon(E.stateName).loop().returns(plain.name)
    sending.upon(E.stateName, nodata=True).loop().returns(sending.name)
    discarding.upon(E.stateName, nodata=True).loop().returns(discarding.name)
    collecting.upon(E.stateName, nodata=True).loop().returns(collecting.name)
    streaming.upon(E.stateName, nodata=True).loop().returns(streaming.name)
    return builder.build()


#: Builds the machine of one exchange around its :class:`ExchangeCore`.
ExchangeMachine: LazyMachine[ExchangeCore, ExchangeEvents] = LazyMachine(
    "http exchange", _buildMachine
)


class Exchange:
    """One ``http/request``: a thin class over its :data:`ExchangeMachine`."""

    def __init__(
        self, owner: ExchangeOwner, prepared: Prepared, forget: Callable[[Exchange], None]
    ):
        self.prepared = prepared
        self.core = ExchangeCore(owner, prepared, lambda: forget(self))
        self._machine = ExchangeMachine(self.core)

    def start(self) -> Deferred[dict[str, Any]]:
        """The result: ``{status, headers, bodyBase64}`` (an empty body when streamed)."""
        self._machine.start()
        return self.core.result

    def pause(self) -> None:
        self._machine.pause()

    def resume(self) -> None:
        self._machine.resume()

    def cancel(self) -> None:
        """The session ended: abort without another notification."""
        self._machine.cancel()

    @property
    def state(self) -> str:
        return self._machine.stateName()


__all__ = ["DELTA_METHOD", "Exchange", "ExchangeCore", "ExchangeEvents", "ExchangeMachine"]
