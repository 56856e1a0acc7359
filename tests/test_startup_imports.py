"""What start-up imports: stdio needs no websocket, HTTP or protobuf stack, and the local
websocket mode prints its URL before it imports autobahn and twisted.web.

Start-up time is what a client pays for every stdio session it spawns (bench/startup.py
measures it; nothing is timed here). Each check runs in a fresh interpreter, so ``sys.modules``
shows exactly what that path imported: the option parser and ``makeService`` alone, and the real
entry points (``python -m twisted_exec.executor.stdio_main``, ``twistd codex-executor``) after
they answered ``initialize`` and exited on stdin EOF. None of them loads TLS (pyOpenSSL,
cryptography: ``net/leanreactor.py``), prometheus_client (stdio has no ``/metrics``) or
``twisted.web.client`` (``http/request``'s Agent is built on the first request).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SkipTest, SynchronousTestCase
from zope.interface.verify import verifyObject

ROOT = Path(__file__).resolve().parent.parent
#: TLS: Twisted's reactor imports it unless net/leanreactor.py holds it back.
TLS = (
    "OpenSSL",
    "cryptography",
    "service_identity",
    "twisted.internet.ssl",
    "twisted.internet._sslverify",
    "twisted.protocols.tls",
    "twisted.internet._newtls",
    "twisted.internet.endpoints",
)
#: /metrics: only when something serves it.
METRICS = ("prometheus_client", "twisted_exec.net.metrics")
HEAVY = (
    "autobahn",
    "treq",
    "google.protobuf",
    "twisted.web",
    "twisted_exec.executor.transports.relay",
    "jwt",
    "cbor2",  # autobahn's WAMP serializer (net/leanreactor.UNUSED_OPTIONAL)
    *TLS,
    *METRICS,
    # http/request: built on the first request
    "twisted_exec.executor.resources.http_request",
    "twisted_exec.executor.resources.http_agent",
)
#: Not loaded before the URL is printed, but the local listener's site needs them: autobahn,
#: twisted.web, /metrics, and ``twisted.internet.endpoints`` (autobahn imports it), which is
#: imported without TLS (``net/leanreactor.deferringTLS``), as autobahn is: no pyOpenSSL.
SITE = ("autobahn", "twisted.web", *METRICS, "twisted.internet.endpoints")

STDIO = """
import json, sys
from twisted_exec.executor.options import ExecutorOptions, makeService
options = ExecutorOptions()
options.parseOptions(["--listen", "stdio", "--concurrent-requests", "2"])
makeService(options)
print(json.dumps(sorted(sys.modules)))
"""

WEBSOCKET = """
import json, sys
from twisted_exec.executor.options import ExecutorOptions, makeService
options = ExecutorOptions()
options.parseOptions(["--listen", "ws://127.0.0.1:0"])
top = makeService(options)
[local] = list(top)
announced = []
local.announce = announced.append
local.privilegedStartService()
before = sorted(sys.modules)
local._listening.site()  # what the next reactor turn does
print(json.dumps({"url": announced, "before": before, "after": sorted(sys.modules)}))
local.port.stopListening()
"""


#: Modules of parameter types: ``compat/record.frozen`` records, not dataclasses, whose creation
#: execs generated code for every class at import.
PARAMS = (
    "twisted_exec.compat.params",
    "twisted_exec.compat.fsparams171",
    "twisted_exec.executor.methods.fs",
    "twisted_exec.executor.methods.http",
)

#: Runs an entry point as a user does (argv after the dump file), answering what is on stdin,
#: and writes ``sorted(sys.modules)``, the Automat machines built (``executor/core/lazymachine``)
#: and the dataclasses among the parameter types to the dump file when the process exits.
ENTRY = """
import atexit, json, runpy, sys
dump = sys.argv.pop(1)
PARAMS = %r
def dataclasses(module):
    found = [c for c in vars(sys.modules[module]).values() if isinstance(c, type)]
    found = [c for c in found if c.__module__ == module]
    return [c.__qualname__ for c in found if hasattr(c, "__dataclass_fields__")]
def write():
    lazy = sys.modules["twisted_exec.executor.core.lazymachine"]
    with open(dump, "w") as f:
        json.dump({
            "modules": sorted(sys.modules),
            "machines": sorted(m.name for m in lazy.LAZY_MACHINES),
            "built": lazy.builtMachines(),
            "dataclasses": [c for m in PARAMS for c in dataclasses(m)],
            "sha256": __import__("hashlib").sha256(b"x").hexdigest(),
        }, f)
atexit.register(write)
if sys.argv[1] == "stdio_main":
    sys.argv[0:2] = ["stdio_main"]
    runpy.run_module("twisted_exec.executor.stdio_main", run_name="__main__")
else:
    from twisted.scripts.twistd import run
    sys.argv[0] = "twistd"
    run()
""".replace("%r", repr(PARAMS))

INITIALIZE = b'{"id":1,"method":"initialize","params":{"clientName":"test"}}\n'

#: A TLS echo over loopback, the endpoint way, into ``result`` (``echo``, ``tls``), then
#: ``result`` printed: the end of the scripts below, which define ``reactor`` and ``result``.
TLS_ECHO = """
from pathlib import Path
import twisted.test
from twisted.internet import ssl
from twisted.internet.endpoints import TCP4ClientEndpoint, wrapClientTLS
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.tls import TLSMemoryBIOFactory
pem = (Path(twisted.test.__file__).parent / "server.pem").read_bytes()
server = ssl.PrivateCertificate.loadPEM(pem).options()
class Echo(Protocol):
    def dataReceived(self, data):
        self.transport.write(data)
class Ask(Protocol):
    def connectionMade(self):
        self.transport.write(b"ping")
    def dataReceived(self, data):
        result["echo"] = data.decode()
        result["tls"] = self.transport.getPeerCertificate() is not None
        reactor.stop()
def failed(f):
    result["error"] = str(f.value)
    reactor.stop()
wrapped = TLSMemoryBIOFactory(server, False, Factory.forProtocol(Echo))
port = reactor.listenTCP(0, wrapped, interface="127.0.0.1")
dial = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port, timeout=10)
d = wrapClientTLS(ssl.CertificateOptions(), dial).connect(Factory.forProtocol(Ask))
d.addErrback(failed)
reactor.callLater(30, reactor.stop)
reactor.run()
print(json.dumps(result))
"""

#: TLS the endpoint way after the reactor was imported without it: Agent's https policy (which
#: twisted.web.client disables for good if it is imported while OpenSSL is not importable) and
#: a TLS echo over loopback (what http/request to an https URL and a wss relay do).
TLS_AFTER = (
    """
import json, sys
from twisted_exec.net.leanreactor import importReactorDeferringTLS
reactor = importReactorDeferringTLS()
before = "OpenSSL" in sys.modules
from twisted.web.client import BrowserLikePolicyForHTTPS
BrowserLikePolicyForHTTPS().creatorForNetloc(b"localhost", 443)  # raises without TLS
result = {"before": before}
"""
    + TLS_ECHO
)

#: stdio_main's start-up (no stdlib OpenSSL, executor/stdio_main.STDLIB_OPENSSL), then TLS: what an
#: ``https`` ``http/request`` of a stdio executor does (pyOpenSSL needs no ``ssl``/``_hashlib``).
STDIO_TLS_AFTER = (
    """
import json, sys
from twisted_exec.executor.stdio_main import STDLIB_OPENSSL
from twisted_exec.net.leanreactor import importReactorDeferringTLS, withoutOptional
with withoutOptional(*STDLIB_OPENSSL):
    reactor = importReactorDeferringTLS()
    from twisted_exec.executor.executor import Executor
    from twisted_exec.executor.transports.stdio import makeStdioService
    Executor(reactor, metrics=False)
result = {"before": sorted(m for m in STDLIB_OPENSSL if m in sys.modules)}
from twisted_exec.executor.resources.http_request import HttpRequester
HttpRequester(reactor, lambda *a: None).agent._endpointFactory._policyForHTTPS.creatorForNetloc(
    b"localhost", 443
)
"""
    + TLS_ECHO
)

#: Remote mode with a plain http registry: the remote stack imported without TLS, then TLS the
#: endpoint way (what a wss URL from that registry does: endpoints' factory on first use) and
#: our Agents' https policy (http/request and the registry client: net/httpspolicy).
REMOTE_TLS_AFTER = (
    """
import json, os, sys
os.environ["CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN"] = "not-a-secret"
from twisted_exec.executor.options import ExecutorOptions, makeService
options = ExecutorOptions()
options.parseOptions(["--remote", "http://127.0.0.1:9", "--executor-id", "lean"])
makeService(options)
from twisted.internet import reactor
modules = sorted(sys.modules)
from twisted_exec.executor.resources.http_request import HttpRequester
from twisted_exec.executor.transports.relay.service import defaultHttpClient
from twisted_exec.net.httpspolicy import TLSPolicyOnFirstUse
from twisted_exec.net.wsendpoints import WebsocketEndpoints
policies = [HttpRequester(reactor, lambda *a: None).agent._endpointFactory._policyForHTTPS,
            defaultHttpClient(reactor)._agent._endpointFactory._policyForHTTPS]
result = {"modules": modules, "policies": [type(p).__name__ for p in policies]}
from twisted_exec.wire.frames import decodeFrame, encodeData
result["firstFrame"] = repr(decodeFrame(encodeData("s", 7, b"{}")))  # protobuf, imported now
result["garbage"] = repr(decodeFrame(b"\\xff"))
TLSPolicyOnFirstUse().creatorForNetloc(b"localhost", 443)  # twisted.internet.ssl, loaded now
WebsocketEndpoints(reactor)("wss://localhost:1/")
"""
    + TLS_ECHO
)


def environ() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def run(script: str) -> object:
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        check=True,
        timeout=60,
        env=environ(),
        cwd=str(ROOT),
    ).stdout
    return json.loads(out.splitlines()[-1])


def entryPoint(dump: str, *argv: str) -> tuple[bytes, dict[str, list[str]]]:
    """Run an entry point with ``initialize`` then EOF on stdin: its stdout and what it loaded
    (``modules``, ``machines``, ``built``, ``dataclasses``: see :data:`ENTRY`)."""
    done = subprocess.run(
        [sys.executable, "-c", ENTRY, dump, *argv],
        input=INITIALIZE,
        capture_output=True,
        check=True,
        timeout=60,
        env=environ(),
        cwd=str(ROOT),
    )
    with open(dump) as f:
        loaded: dict[str, list[str]] = json.load(f)
    return done.stdout, loaded


def heavy(modules: list[str], names: tuple[str, ...] = HEAVY) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in names)]


class StartupImportTests(SynchronousTestCase):
    def test_stdioImportsNoWebsocketStack(self) -> None:
        modules = run(STDIO)
        assert isinstance(modules, list)
        self.assertEqual(heavy(modules), [])

    def test_urlBeforeTheWebsocketStack(self) -> None:
        result = run(WEBSOCKET)
        assert isinstance(result, dict)
        self.assertEqual(len(result["url"]), 1)
        self.assertTrue(result["url"][0].startswith("ws://127.0.0.1:"))
        self.assertEqual(heavy(result["before"]), [])
        self.assertIn("autobahn.twisted.websocket", result["after"])
        self.assertIn("twisted.web.server", result["after"])
        # the site needs autobahn, twisted.web and /metrics; still no TLS, no http/request
        onlyHeavy = tuple(h for h in HEAVY if h not in SITE)
        self.assertEqual(heavy(result["after"], onlyHeavy), [])

    def test_stdioMainAfterInitialize(self) -> None:
        """``python -m twisted_exec.executor.stdio_main`` answers and exits without them."""
        out, loaded = entryPoint(os.path.abspath(self.mktemp()), "stdio_main")
        self.assertIn(b'"sessionId"', out)
        self.assertIn("twisted.internet.epollreactor", loaded["modules"])
        self.assertEqual(heavy(loaded["modules"]), [])
        self.assertLazy(loaded)
        # nor the standard library's OpenSSL (executor/stdio_main.STDLIB_OPENSSL): libcrypto.so;
        # hashlib falls back to CPython's own sha256, the same digest
        self.assertEqual(heavy(loaded["modules"], ("ssl", "_ssl", "_hashlib")), [])
        self.assertEqual(loaded["sha256"], hashlib.sha256(b"x").hexdigest())

    def assertLazy(self, loaded: dict[str, list[str]]) -> None:
        """Imported, but no Automat machine built and Automat not even imported (``initialize``
        starts no process and no exchange), and the parameter types are not dataclasses."""
        self.assertIn("process", loaded["machines"])
        self.assertEqual(loaded["built"], [])
        self.assertNotIn("automat", loaded["modules"])  # imported by the first build
        self.assertEqual(loaded["dataclasses"], [])

    def test_twistdStdioAfterInitialize(self) -> None:
        """``twistd -n codex-executor --listen stdio``: plugin discovery included."""
        from twisted.application.service import IServiceMaker
        from twisted.plugin import getPlugins

        if not any(p.tapname == "codex-executor" for p in getPlugins(IServiceMaker)):
            raise SkipTest("the codex-executor twistd plugin is not installed (pip install .)")
        argv = ("-n", "--pidfile=", "codex-executor", "--listen", "stdio")
        out, loaded = entryPoint(os.path.abspath(self.mktemp()), *argv)
        self.assertIn(b'"sessionId"', out)
        self.assertIn("twisted.scripts.twistd", loaded["modules"])
        self.assertEqual(heavy(loaded["modules"]), [])
        self.assertLazy(loaded)

    def test_tlsAfterTheLeanReactor(self) -> None:
        """The reactor imported without pyOpenSSL still does TLS through endpoints, loaded
        then (``wrapClientTLS``: what Agent and ``net/wsendpoints`` use)."""
        result = run(TLS_AFTER)
        self.assertEqual(result, {"before": False, "echo": "ping", "tls": True})

    def test_remoteWithHttpRegistryDefersTLS(self) -> None:
        """``--remote http://...`` imports its relay stack without pyOpenSSL (nor
        prometheus_client: nothing serves /metrics), and TLS still
        works afterwards: endpoints' ``wrapClientTLS`` (a ``wss`` URL) and the https policy of
        both our Agents."""
        result = run(REMOTE_TLS_AFTER)
        assert isinstance(result, dict)
        modules = result.pop("modules")
        self.assertIn("twisted_exec.executor.transports.relay.service", modules)
        self.assertIn("autobahn.twisted.websocket", modules)
        self.assertIn("twisted.internet.endpoints", modules)
        tls = tuple(m for m in TLS if m != "twisted.internet.endpoints")
        self.assertEqual(heavy(modules, tls), [])
        self.assertNotIn("autobahn.twisted.wamp", modules)  # net/autobahn_ws
        self.assertNotIn("twisted.web.server", modules)  # net/quietsite
        # no --metrics-listen and no listener: nobody could read a count (executor/options.py)
        self.assertEqual(heavy(modules, METRICS), [])
        # protobuf: imported by the first frame (wire/frames._protobuf), which still decodes
        self.assertEqual(heavy(modules, ("google.protobuf",)), [])
        self.assertEqual(result.pop("firstFrame"), "Data(streamId='s', seq=7)")
        self.assertIn("undecodable relay frame (1 bytes): Error parsing", result.pop("garbage"))
        self.assertEqual(
            result,
            {"policies": ["TLSPolicyOnFirstUse"] * 2, "echo": "ping", "tls": True},
        )

    def test_tlsAfterStdioMainStartup(self) -> None:
        """stdio_main's start-up loads no stdlib OpenSSL, and TLS works after it (an https
        ``http/request``: the Agent's policy, then a TLS exchange the endpoint way)."""
        result = run(STDIO_TLS_AFTER)
        self.assertEqual(result, {"before": [], "echo": "ping", "tls": True})


class DeferredHttpRequesterTests(SynchronousTestCase):
    """``http/request``'s requester is built on the session's first request."""

    def test_builtOnFirstRequestWithTheSessionState(self) -> None:
        from twisted.internet.task import Clock

        from twisted_exec.compat.params import HttpRequestParams
        from twisted_exec.executor.core.interfaces import IHttpRequester
        from twisted_exec.executor.executor import DeferredHttpRequester
        from twisted_exec.executor.resources.http_request import HttpRequester

        lazy = DeferredHttpRequester(Clock(), lambda *a: None, 12345)
        verifyObject(IHttpRequester, lazy)
        lazy.pauseProducing()
        lazy.cancelAll()  # nothing to cancel yet
        self.assertIsNone(lazy.real)
        failed = lazy.request(HttpRequestParams(method="GET", url="ftp://x/", requestId="r"))
        self.failureResultOf(failed)
        real = lazy.real
        assert isinstance(real, HttpRequester)
        self.assertEqual(real.maxBufferedBody, 12345)
        self.assertTrue(real.paused)
        lazy.resumeProducing()
        self.assertFalse(real.paused)
        lazy.request(HttpRequestParams(method="GET", url="ftp://y/", requestId="s")).addErrback(
            lambda _: None
        )
        self.assertIs(lazy.real, real)
