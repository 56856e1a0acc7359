"""Remote mode end to end over loopback: the test registry (twisted.web) and rendezvous
(autobahn) as the cloud, our service with the real processor, real processes and files."""

from __future__ import annotations

import base64
import os
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from tests.support.relay import TestCloudExecutorMixin, startRemoteExecutor
from tests.test_relay_demux import captureLogs
from twisted_exec.executor.executor import Executor
from twisted_exec.executor.transports.relay.service import RemoteExecutorService
from twisted_exec.testing.registry import FakeRegistry, Reply, errorBody
from twisted_exec.testing.rendezvous import ExecutorConnection, HarnessStream

TOKEN = "tok-INTEGRATION-s3cret"
TIMEOUT = 10


def bounded(d: Deferred[Any], seconds: float = TIMEOUT) -> Deferred[Any]:
    return d.addTimeout(seconds, reactor)


async def processOutput(stream: HarnessStream, processId: str) -> tuple[bytes, list[str]]:
    """Collect a process's notifications on ``stream`` until process/closed."""
    output = b""
    methods = []
    while True:
        note = await bounded(stream.notifications.get())
        if note["params"].get("processId") != processId:
            continue
        methods.append(note["method"])
        if note["method"] == "process/output":
            output += base64.b64decode(note["params"]["chunk"])
        if note["method"] == "process/closed":
            return output, methods


class RemoteIntegrationTests(TestCloudExecutorMixin, TestCase):
    timeout = 60
    cloudToken = TOKEN

    def tearDown(self) -> None:
        text = "\n".join(self.logs)
        self.assertNotIn(TOKEN, text)
        for sig in self.rendezvous.signatures.values():
            self.assertNotIn(sig, text)

    def startService(self, token: str = TOKEN, **kwargs: Any) -> RemoteExecutorService:
        return startRemoteExecutor(
            self, self.executor, self.registry.baseUrl, "exec-it", token, **kwargs
        )

    async def connection(self, n: int = 1) -> ExecutorConnection:
        connection: ExecutorConnection = await bounded(self.rendezvous.waitForConnection(n))
        return connection

    def startParams(self, processId: str, script: str) -> dict[str, Any]:
        return {
            "processId": processId,
            "argv": ["/bin/sh", "-c", script],
            "cwd": self.tmp,
            "env": {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            "tty": False,
        }

    async def test_twoStreamsNoCrossTalkAndReset(self) -> None:
        self.startService()
        conn = await self.connection()
        [registration] = self.registry.requests
        self.assertEqual(registration.headers["authorization"], [f"Bearer {TOKEN}"])
        self.assertEqual(conn.executorId, "exec-it")
        self.assertNotIn("authorization", conn.headers)
        self.assertTrue(
            any(
                "codex exec-server remote executor registered with executor_id exec-it" in line
                for line in self.logs
            ),
            self.logs,
        )

        a, b = conn.stream("stream-a"), conn.stream("stream-b")
        a.resume()
        b.resume()
        sessionA, sessionB = await bounded(a.initialize()), await bounded(b.initialize())
        self.assertNotEqual(sessionA, sessionB)

        # Both streams use the same processId: sessions are independent.
        for stream, word in ((a, "alpha"), (b, "beta")):
            reply = await bounded(
                stream.request("process/start", self.startParams("p1", f"echo {word}; echo e >&2"))
            )
            self.assertEqual(reply["result"], {"processId": "p1"})
        outA, methodsA = await processOutput(a, "p1")
        outB, _ = await processOutput(b, "p1")
        self.assertEqual(sorted(outA.split()), [b"alpha", b"e"])
        self.assertEqual(sorted(outB.split()), [b"beta", b"e"])
        self.assertIn("process/exited", methodsA)

        # fs calls on both streams
        for stream, name in ((a, "a.txt"), (b, "b.txt")):
            path = os.path.join(self.tmp, name)
            data = base64.b64encode(name.encode()).decode()
            reply = await bounded(
                stream.request("fs/writeFile", {"path": path, "dataBase64": data})
            )
            self.assertEqual(reply["result"], {})
            reply = await bounded(stream.request("fs/readFile", {"path": path}))
            self.assertEqual(reply["result"], {"dataBase64": data})

        # Every frame the executor sent went to one of our two streams, seqs from 0 per stream.
        self.assertEqual(conn.orphans, [])
        self.assertEqual(a.seqs, list(range(len(a.seqs))))
        self.assertEqual(b.seqs, list(range(len(b.seqs))))

        # Reset A: B keeps working, A gets nothing more, A's id later is a fresh session.
        a.reset("harness done")
        reply = await bounded(b.request("fs/getMetadata", {"path": self.tmp}))
        self.assertTrue(reply["result"]["isDirectory"])
        countA = len(a.messages)
        fresh = conn.stream("stream-a")
        reply = await bounded(fresh.request("process/read", {"processId": "p1"}))
        self.assertEqual(
            reply["error"]["message"], "client must call initialize before using exec methods"
        )
        self.assertEqual(fresh.seqs[-1], 0)
        self.assertEqual(len(a.messages), countA + 1)  # the same HarnessStream object

    async def test_reconnectReregistersAndResumes(self) -> None:
        service = self.startService()
        first = await self.connection()
        stream = first.stream("s1")
        sessionId = await bounded(stream.initialize())
        reply = await bounded(
            stream.request("process/start", self.startParams("sleeper", "sleep 30"))
        )
        self.assertEqual(reply["result"], {"processId": "sleeper"})

        first.abort()
        second = await self.connection(2)
        self.assertEqual(len(self.registry.requests), 2)
        self.assertEqual(service.endpoint.registrations, 2)
        # Each registration handed out a fresh signature and the executor used it.
        self.assertNotEqual(first.query["sig"], second.query["sig"])

        again = second.stream("s2")
        reply = await bounded(
            again.request("initialize", {"clientName": "it", "resumeSessionId": sessionId})
        )
        self.assertEqual(reply["result"], {"sessionId": sessionId})
        again.notify("initialized")
        reply = await bounded(again.request("process/terminate", {"processId": "sleeper"}))
        self.assertEqual(reply["result"], {"running": True})
        # live notifications now arrive on the new stream; wait so no pipe outlives the test
        _, methods = await processOutput(again, "sleeper")
        self.assertIn("process/exited", methods)

    async def test_401StopsService(self) -> None:
        service = self.startService(token="not-the-token")
        error = await bounded(service.whenFatal())
        self.assertEqual(
            str(error),
            "executor registry authentication error: executor registry authentication failed "
            "(401 Unauthorized): invalid bearer token",
        )
        self.assertFalse(service.running)
        self.assertEqual(len(self.registry.requests), 1)
        self.assertNotIn("not-the-token", "\n".join(self.logs))

    async def test_transientErrorRetriedForReal(self) -> None:
        self.registry.script(Reply(500, errorBody("internal", "down")))
        service = self.startService(retryPolicy=lambda attempt: 0.05)
        await self.connection()
        self.assertEqual(len(self.registry.requests), 2)
        self.assertTrue(service.running)

    async def test_refusedUpgradeRetried(self) -> None:
        self.rendezvous.refuseUpgrades = True
        self.startService(retryPolicy=lambda attempt: 0.05)
        await bounded(self.registry.waitForRequest(3))
        self.rendezvous.refuseUpgrades = False
        conn = await self.connection()
        self.assertGreaterEqual(len(self.registry.requests), 3)
        reply = await bounded(conn.stream("x").request("initialize", {"clientName": "c"}))
        self.assertIn("sessionId", reply["result"])

    async def test_pingsOverLoopback(self) -> None:
        self.startService(pingInterval=0.05)
        conn = await self.connection()
        await bounded(conn.waitForPings(3))

    async def test_halfOpenDroppedAndReconnected(self) -> None:
        self.rendezvous.answerPings = False
        self.startService(pingInterval=0.05, pongTimeout=0.3, retryPolicy=lambda attempt: 0.05)
        first = await self.connection()
        await self.connection(2)
        info = await bounded(first.whenClosed())
        self.assertEqual(info[1], 1006)
        self.assertTrue(any("no pong or message" in line for line in self.logs), self.logs)


def selfSignedPem(hostname: str) -> bytes:
    """Key and self-signed certificate (with a subjectAltName) for ``hostname``, as PEM."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    keyPem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return keyPem + cert.public_bytes(serialization.Encoding.PEM)


class TlsVerificationTests(TestCase):
    """wss:// URLs are dialled with certificate verification: a self-signed server is refused."""

    timeout = 60

    async def test_selfSignedRefused(self) -> None:
        from twisted.internet import ssl
        from twisted.internet.protocol import Factory, Protocol

        logs = captureLogs(self)
        cert = ssl.PrivateCertificate.loadPEM(selfSignedPem("localhost"))
        accepted: list[Protocol] = []

        class Recorder(Protocol):
            def connectionMade(self) -> None:
                accepted.append(self)

        server = reactor.listenSSL(  # type: ignore[attr-defined]
            0, Factory.forProtocol(Recorder), cert.options(), interface="127.0.0.1"
        )
        self.addCleanup(server.stopListening)
        port = server.getHost().port
        registry = FakeRegistry(TOKEN, lambda ident: f"wss://localhost:{port}/executor/{ident}")
        registry.listen(reactor)
        self.addCleanup(registry.stopListening)
        executor = Executor(reactor)
        self.addCleanup(executor.shutdown)
        service = startRemoteExecutor(
            self, executor, registry.baseUrl, "tls", TOKEN, retryPolicy=lambda attempt: 0.05
        )
        await bounded(registry.waitForRequest(3))
        self.assertGreaterEqual(len(accepted), 1)  # TCP got there ...
        failures = [line for line in logs if "handshake with wss://localhost" in line]
        self.assertTrue(failures, logs)  # ... but TLS verification refused the certificate
        self.assertIn("certificate verify failed", failures[0])
        self.assertIsNone(service.endpoint.current)
