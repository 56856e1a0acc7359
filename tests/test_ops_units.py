"""Unit tests of the operator pieces: log observer, metrics objects, twistd option mixin,
codex-exec's exit-status and terminal helpers."""

from __future__ import annotations

import io
import json

from prometheus_client.parser import text_string_to_metric_families
from twisted.logger import Logger, LogLevel, LogPublisher
from twisted.python import usage
from twisted.trial.unittest import TestCase
from twisted.web.test.requesthelper import DummyRequest

from twisted_exec.cli import outcome, terminal
from twisted_exec.net import logs, metrics, metrics_web, quietweb, twistdopts


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, parsed by prometheus_client's parser."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


class ObserverTests(TestCase):
    def publish(self, observer: object, emit: object) -> None:
        publisher = LogPublisher(observer)  # type: ignore[arg-type]
        emit(Logger(namespace="twisted_exec.test", observer=publisher))  # type: ignore[operator]

    def test_textDropsDebugAndTwistedNoise(self) -> None:
        out = io.StringIO()
        observer = logs.makeObserver(out, "text", "info")

        def emit(log: Logger) -> None:
            log.debug("stream {s} detail", s="x")
            log.info("Starting factory {factory!r}", factory=object())
            log.info("registered with executor_id {i}", i="box")
            log.warn("Stopping factory {f}", f="even a warning is kept")

        self.publish(observer, emit)
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 2, lines)
        self.assertIn("registered with executor_id box", lines[0])
        self.assertIn("even a warning is kept", lines[1])
        self.assertNotIn("0x", out.getvalue())

    def test_debugLevelShowsDetail(self) -> None:
        out = io.StringIO()
        self.publish(logs.makeObserver(out, "text", "debug"), lambda log: log.debug("detail"))
        self.assertIn("detail", out.getvalue())

    def test_legacyPortLinesAreNoise(self) -> None:
        for message in ("(TCP Port 8765 Closed)", "Site starting on 8765"):
            event = {"message": (message,), "log_level": LogLevel.info, "isError": 0}
            self.assertTrue(logs.isTwistedNoise(event), message)
            bridged = {
                "log_text": message,
                "log_format": "{log_text}",
                "log_namespace": "log_legacy",
            }
            self.assertTrue(logs.isTwistedNoise(bridged), message)
        ours = {"log_format": "codex rendezvous starting on x", "log_namespace": "twisted_exec.a"}
        self.assertFalse(logs.isTwistedNoise(ours))

    def test_jsonLinesParse(self) -> None:
        out = io.StringIO()

        def emit(log: Logger) -> None:
            log.info("connected to {url}", url="ws://127.0.0.1:1/executor/box")
            log.error("stopped: {reason}", reason="401")

        self.publish(logs.makeObserver(out, "json", "info"), emit)
        records = [json.loads(line) for line in out.getvalue().splitlines()]
        self.assertEqual([r["level"] for r in records], ["info", "error"])
        self.assertEqual(records[0]["text"], "connected to ws://127.0.0.1:1/executor/box")
        self.assertEqual(records[1]["reason"], "401")

    def test_badFormatOrLevel(self) -> None:
        self.assertRaises(ValueError, logs.makeObserver, io.StringIO(), "xml")
        self.assertRaises(ValueError, logs.makeObserver, io.StringIO(), "text", "loud")

    def test_quietPoolAndSite(self) -> None:
        from twisted.internet.task import Clock

        pool = quietweb.QuietConnectionPool(Clock(), persistent=False)
        self.assertFalse(pool._factory.noisy)
        from twisted.web.resource import Resource

        site = quietweb.QuietSite(Resource())
        site.log(DummyRequest([b"readyz"]))  # type: ignore[arg-type]
        self.assertFalse(site.noisy)


class MetricsTests(TestCase):
    def test_executorMetricsMoveAndParse(self) -> None:
        m = metrics.ExecutorMetrics()
        sessions = [3]
        m.gaugeFrom("codex_exec_sessions", "Sessions open", lambda: sessions[0])
        before = samples(m.render().decode())
        self.assertEqual(before[("codex_exec_sessions", ())], 3)
        self.assertEqual(before[("codex_exec_processes_started_total", ())], 0)
        m.processStarted()
        m.processStarted()
        m.received("relay", 100)
        m.sent("relay", 40)
        m.registration("ok")
        m.registration("refused")
        m.connection("open")
        m.requestDone("process/start", 0.002)
        m.requestDone("evil/" + "x" * 100, 0.002)
        m.pingAnswered(0.0004)
        sessions[0] = 5
        after = samples(m.render().decode())
        self.assertEqual(after[("codex_exec_sessions", ())], 5)
        self.assertEqual(after[("codex_exec_processes_started_total", ())], 2)
        self.assertEqual(after[("codex_exec_received_bytes_total", (("transport", "relay"),))], 100)
        self.assertEqual(after[("codex_exec_sent_bytes_total", (("transport", "relay"),))], 40)
        self.assertEqual(after[("codex_exec_registrations_total", (("outcome", "refused"),))], 1)
        key = ("codex_exec_request_duration_seconds_count", (("method", "process/start"),))
        self.assertEqual(after[key], 1)
        other = ("codex_exec_request_duration_seconds_count", (("method", "other"),))
        self.assertEqual(after[other], 1)
        self.assertEqual(after[("codex_exec_relay_rtt_seconds_count", ())], 1)

    def test_twoRegistriesDoNotMix(self) -> None:
        a, b = metrics.ExecutorMetrics(), metrics.ExecutorMetrics()
        a.processStarted()
        self.assertEqual(
            samples(b.render().decode())[("codex_exec_processes_started_total", ())], 0
        )

    def test_pendingLatencyMatchesPrometheus(self) -> None:
        """Latencies summed until the render give the same buckets, count and sum as
        prometheus_client's own ``observe``, bucket edges included, over two renders."""
        from prometheus_client import CollectorRegistry, Histogram, generate_latest

        registry = CollectorRegistry()
        reference = Histogram(
            "codex_exec_request_duration_seconds",
            "Time from a request's arrival to its reply, by method",
            ["method"],
            buckets=metrics.LATENCY_BUCKETS,
            registry=registry,
        )
        m = metrics.ExecutorMetrics()
        edges = list(metrics.LATENCY_BUCKETS)
        values = [0.0, 1e-6, 0.0004, *edges, *(e * 1.0001 for e in edges), 31.0, 1e9]

        def compare() -> None:
            def ours(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
                return {k: v for k, v in samples(text).items() if "request_duration" in k[0]}

            want = ours(generate_latest(registry).decode())
            got = ours(m.render().decode())
            for key in want:
                if key[0].endswith("_created"):
                    continue
                self.assertAlmostEqual(got[key], want[key], msg=str(key))

        for method in ("fs/getMetadata", "process/start"):
            for value in values:
                m.requestDone(method, value)
                reference.labels(method).observe(value)
        compare()
        for value in values[:7]:  # a second round: counts are added, not replaced
            m.requestDone("fs/getMetadata", value)
            reference.labels("fs/getMetadata").observe(value)
        compare()
        self.assertEqual(
            samples(m.render().decode())[
                ("codex_exec_request_duration_seconds_count", (("method", "fs/getMetadata"),))
            ],
            len(values) + 7,
        )

    def test_rendezvousMetrics(self) -> None:
        m = metrics.RendezvousMetrics()
        m.registration("ok")
        m.websocket("harness", "refused")
        m.routed("to_executor", 50)
        m.routed("to_executor", 25)
        m.routed("to_harness", 7)
        got = samples(m.render().decode())
        self.assertEqual(
            got[("codex_rendezvous_routed_bytes_total", (("direction", "to_executor"),))], 75
        )
        self.assertEqual(got[("codex_rendezvous_frames_total", (("direction", "to_executor"),))], 2)
        self.assertEqual(got[("codex_rendezvous_frames_total", (("direction", "to_harness"),))], 1)
        m.routed("to_harness", 3)
        again = samples(m.render().decode())
        self.assertEqual(
            again[("codex_rendezvous_routed_bytes_total", (("direction", "to_harness"),))], 10
        )
        key = ("codex_rendezvous_websockets_total", (("outcome", "refused"), ("role", "harness")))
        self.assertEqual(got[key], 1)

    def test_resourceServesTheExposition(self) -> None:
        m = metrics.ExecutorMetrics()
        m.processStarted()
        request = DummyRequest([b""])
        body = metrics_web.MetricsResource(m).render_GET(request)  # type: ignore[arg-type]
        contentType = request.responseHeaders.getRawHeaders(b"content-type") or [b""]
        self.assertIn(b"text/plain", contentType[0])
        self.assertEqual(samples(body.decode())[("codex_exec_processes_started_total", ())], 1)


class _Opts(twistdopts.OperatorOptions):
    programName = "twistd codex-test"
    optParameters = [["listen", None, "x", "where"]]
    parent = object()  # type: ignore[assignment]  # as under twistd, which sets the plugin options' parent

    def postOptions(self) -> None:
        if self["listen"] == "bad":
            raise usage.UsageError("--listen expects ws://IP:PORT, got 'bad'")


class TwistdOptionsTests(TestCase):
    def setUp(self) -> None:
        self.err = io.StringIO()
        self.out = io.StringIO()
        import sys

        self.patch(sys, "__stderr__", self.err)
        self.patch(sys, "__stdout__", self.out)

    def test_usageErrorIsOneLineExit2(self) -> None:
        with self.assertRaises(SystemExit) as caught:
            _Opts().parseOptions(["--listen", "bad"])
        self.assertEqual(caught.exception.code, 2)
        self.assertEqual(
            self.err.getvalue(),
            "Error: --listen expects ws://IP:PORT, got 'bad' (see twistd codex-test --help)\n",
        )
        with self.assertRaises(SystemExit):
            _Opts().parseOptions(["--bogus"])
        self.assertTrue(self.err.getvalue().splitlines()[-1].startswith("Error: option --bogus"))

    def test_logOptionsValidated(self) -> None:
        opts = _Opts()
        opts.parseOptions(["--log-format", "json", "--log-level", "debug"])
        self.assertEqual((opts["log-format"], opts["log-level"]), ("json", "debug"))
        with self.assertRaises(SystemExit):
            _Opts().parseOptions(["--log-format", "xml"])
        self.assertIn("--log-format expects text or json", self.err.getvalue())

    def test_versionIsOurs(self) -> None:
        with self.assertRaises(SystemExit) as caught:
            _Opts().parseOptions(["--version"])
        self.assertEqual(caught.exception.code, 0)
        self.assertRegex(self.out.getvalue(), r"^twistd codex-test 0\.\d+\.\d+ \(twisted-exec;")


class OutcomeTests(TestCase):
    def test_spawnFailures(self) -> None:
        self.assertEqual(
            outcome.spawnFailure("foo", "No such file or directory (os error 2)"),
            ("foo: command not found on the executor", 127),
        )
        denied = outcome.spawnFailure("/etc/passwd", "Permission denied (os error 13)")
        self.assertEqual(denied and denied[1], 126)
        self.assertIsNone(outcome.spawnFailure("x", "too many processes: ..."))

    def test_exitStatus(self) -> None:
        self.assertEqual(outcome.exitStatus(3), (3, None))
        self.assertEqual(outcome.exitStatus(143), (143, None))
        code, note = outcome.exitStatus(-1)
        self.assertEqual(code, 255)
        self.assertIn("does not say which", note or "")
        self.assertEqual(outcome.exitStatus(-1, interrupted=True), (130, None))

    def test_cwdProblem(self) -> None:
        self.assertIsNone(outcome.cwdProblem("/srv", {"isDirectory": True}))
        self.assertIn("no such directory", outcome.cwdProblem("/x", None) or "")
        self.assertIn("not a directory", outcome.cwdProblem("/f", {"isDirectory": False}) or "")


class TerminalTests(TestCase):
    def test_sizedArgvKeepsTheCommand(self) -> None:
        self.assertEqual(terminal.sizedArgv(["top"], None), ["top"])
        argv = terminal.sizedArgv(["ls", "-l", "a b"], (50, 132))
        self.assertEqual(argv[:3], ["/bin/sh", "-c", terminal.SIZE_WRAPPER])
        self.assertEqual(argv[3:], ["codex-exec", "50", "132", "ls", "-l", "a b"])

    def test_wrapperSetsTheSizeOnARealPty(self) -> None:
        import os
        import pty
        import subprocess

        master, slave = pty.openpty()
        try:
            argv = terminal.sizedArgv(["stty", "size"], (41, 97))
            child = subprocess.run(argv, stdin=slave, stdout=slave, stderr=slave, timeout=10)
            self.assertEqual(child.returncode, 0)
            self.assertIn(b"41 97", os.read(master, 1024))
        finally:
            os.close(master)
            os.close(slave)
