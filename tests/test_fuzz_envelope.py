"""Property tests: the JSON-RPC envelope and the processor behind it never raise past their
boundary, whatever bytes arrive, and every request with a usable id gets exactly one reply.

The processor runs with its real envelope, handshake and parameter decoding, over fake session
resources (no processes or files are touched), so hypothesis can throw thousands of messages at
it in a second. Any ``log.failure`` (an exception caught at the boundary) fails the test too.
"""

from __future__ import annotations

import json
from typing import Any, cast

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import RecordingSink
from tests.support.fakes import StubFilesystem, StubResources
from twisted_exec.executor.core.dialect import Dialect
from twisted_exec.executor.core.processor import ExecProcessor
from twisted_exec.executor.core.session import SessionRegistry
from twisted_exec.executor.methods import buildRegistry
from twisted_exec.wire import jsonrpc
from twisted_exec.wire.errors import RpcError

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)  # Infinity is not JSON (serde refuses it)
    | st.text(max_size=12),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=5),
    max_leaves=16,
)


def _dumps(value: object) -> bytes:
    return json.dumps(value).encode()


REGISTRY = buildRegistry()
NAMES = sorted({*REGISTRY.names(Dialect.V131), *REGISTRY.names(Dialect.V171)})
DECODERS = [
    m.decode
    for name in NAMES
    for m in (REGISTRY.get(name, Dialect.V131), REGISTRY.get(name, Dialect.V171))
    if m is not None
]
methods = st.sampled_from([*NAMES, "initialized", "no/such", "", "process/Start"])


def newProcessor(context: str | None = "ctx") -> tuple[ExecProcessor, RecordingSink]:
    registry = SessionRegistry(Clock(), StubResources, ttl=10.0)
    processor = ExecProcessor(registry, StubFilesystem(), context, methods=REGISTRY)
    sink = RecordingSink()
    processor.makeConnection(sink)
    return processor, sink


class _FailureWatch:
    """Collects ``log.failure`` events while a test runs."""

    def __init__(self, test: SynchronousTestCase) -> None:
        self.failures: list[LogEvent] = []
        observer = cast(ILogObserver, self._observe)
        globalLogPublisher.addObserver(observer)
        test.addCleanup(globalLogPublisher.removeObserver, observer)

    def _observe(self, event: LogEvent) -> None:
        if "log_failure" in event:
            self.failures.append(event)


class EnvelopeFuzzTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.watch = _FailureWatch(self)

    def tearDown(self) -> None:
        self.assertEqual(self.watch.failures, [])

    @FUZZ
    @given(st.binary(max_size=300))
    def test_decodeNeverRaises(self, data: bytes) -> None:
        message = jsonrpc.decode(data)
        self.assertIsInstance(
            message,
            (jsonrpc.Request, jsonrpc.Notification, jsonrpc.Malformed, jsonrpc.Unparseable),
        )

    @FUZZ
    @given(st.sampled_from(DECODERS), json_values)
    def test_paramsRaiseOnlyRpcErrors(self, decode: Any, value: object) -> None:
        try:
            decode(value)
        except RpcError as err:
            self.assertIsInstance(err.message, str)

    @FUZZ
    @given(st.lists(st.binary(max_size=200) | json_values.map(_dumps), max_size=12))
    def test_processorSurvivesAnyBytes(self, payloads: list[bytes]) -> None:
        """Whatever came before, the session still answers, and every reply is JSON-RPC."""
        for context in ("ctx", None):
            processor, sink = newProcessor(context)
            for payload in payloads:
                processor.messageReceived(payload)
            processor.messageReceived(b'{"id":"sentinel","method":"no/such"}')
            messages = sink.messages
            self.assertFalse(sink.closed)
            self.assertEqual(messages[-1]["id"], "sentinel")
            for message in messages:
                self.assertTrue("id" in message or "method" in message, message)

    @settings(FUZZ, max_examples=150)
    @given(st.lists(st.tuples(methods, json_values), max_size=15), st.booleans())
    def test_everyRequestAnsweredOnce(
        self, requests: list[tuple[str, object]], handshake: bool
    ) -> None:
        processor, sink = newProcessor()
        if handshake:
            processor.messageReceived(
                b'{"id":"h","method":"initialize","params":{"clientName":"f"}}'
            )
            processor.messageReceived(b'{"method":"initialized"}')
        for index, (method, value) in enumerate(requests):
            processor.messageReceived(_dumps({"id": index, "method": method, "params": value}))
        replies = [m for m in sink.messages if "method" not in m and m.get("id") != "h"]
        answered = sorted(m["id"] for m in replies if m["id"] != -1)
        self.assertEqual(answered, list(range(len(requests))))
        for reply in replies:
            self.assertEqual(("result" in reply) + ("error" in reply), 1, reply)
