"""Hardening scenarios against a real remote-mode executor process, at any scale.

Each scenario starts the test cloud in this process (a :class:`FakeRegistry` and a rendezvous on
loopback), runs ``twistd -n codex-executor --remote ...`` as a child process
(:class:`~twisted_exec.testing.executorproc.ExecutorProcess`), drives it, and returns a result
with the numbers the hardening issue asks for. ``tests/test_soak.py`` runs them small, on every
test run; ``python scripts/soak.py --full`` runs the issue's full sizes. Same code, two scales.

- :func:`fuzzFrames`: random and mutated relay frames over the real websocket, interleaved with
  valid requests on other streams: no unhandled error, every valid request answered.
- :func:`faults`: the rendezvous drops the websocket again and again while processes run: the
  executor reconnects every time, the session is resumed, nothing leaks.
- :func:`load`: many streams each running commands that print a unique token: no cross-talk,
  flat RSS.
- :func:`slowConsumer`: a rendezvous reading at a fixed rate while a child writes a lot: the
  executor's memory stays bounded and every byte arrives in order.
- :func:`hostile` (:mod:`.hostile`, issue 15): a stalled harness, oversized and blocking
  ``fs/readFile`` calls, a stdin flood and ``setsid`` grandchildren, while another stream's
  latency is measured; RSS bounded, nothing left behind.

Every wait is bounded; the executor child is killed if a scenario fails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from twisted_exec.testing.soak.common import Common, poll, startParams
from twisted_exec.testing.soak.faults import FaultsResult, faults
from twisted_exec.testing.soak.fuzz import FramesResult, fuzzFrame, fuzzFrames
from twisted_exec.testing.soak.hostile import HostileResult, hostile, hostileProblems
from twisted_exec.testing.soak.load import LoadResult, load
from twisted_exec.testing.soak.slow import (
    RSS_GROWTH_BOUND,
    WRITER,
    PatternChecker,
    SlowResult,
    slowConsumer,
)

SCENARIOS: dict[str, Callable[..., Awaitable[Common]]] = {
    "frames": fuzzFrames,
    "faults": faults,
    "load": load,
    "slow": slowConsumer,
    "hostile": hostile,
}

#: The issue's full sizes (``scripts/soak.py --full``) and the quick ones CI runs.
FULL: dict[str, dict[str, Any]] = {
    "frames": {"frames": 100_000},
    "faults": {"drops": 50},
    "load": {"streams": 128, "seconds": 60.0},
    "slow": {"megabytes": 200, "rate": 1e6},
    "hostile": {"seconds": 60.0},
}
QUICK: dict[str, dict[str, Any]] = {
    "frames": {"frames": 2000},
    "faults": {"drops": 5},
    "load": {"streams": 8, "seconds": 3.0},
    "slow": {"megabytes": 20, "rate": 10e6},
    "hostile": {"seconds": 5.0},
}


def verdict(name: str, result: Common, *, timed: bool = True) -> list[str]:
    """The issue's acceptance checks for one scenario's result; empty when all hold.
    ``timed=False`` (the suite) leaves out the latency goals, which only a soak run checks."""
    problems = []
    if result.unhandledErrors:
        problems.append(f"{result.unhandledErrors} unhandled error line(s) in the executor log")
    if result.secretLogLines:
        problems.append(f"{result.secretLogLines} log line(s) contain the token or a signature")
    if result.exitCode != 0:
        problems.append(f"executor exit code {result.exitCode} after SIGTERM")
    if result.shutdownSeconds >= 5:
        problems.append(f"shutdown took {result.shutdownSeconds:.1f} s")
    if isinstance(result, FramesResult):
        if result.validAnswered != result.validRequests or result.wrongAnswers:
            problems.append(
                f"valid requests: {result.validRequests} sent, {result.validAnswered} "
                f"answered, {result.wrongAnswers} wrong"
            )
    elif isinstance(result, FaultsResult):
        if not (result.drops == result.reconnects == result.resumes == result.roundsChecked):
            problems.append(
                f"{result.drops} drops, {result.reconnects} reconnects, {result.resumes} "
                f"resumes, {result.roundsChecked} rounds checked"
            )
        if result.maxResumeSeconds >= 10:
            problems.append(f"a resume took {result.maxResumeSeconds:.1f} s (TTL 10 s)")
        if result.fdsLeaked or result.processesLeaked:
            problems.append(
                f"leaked {len(result.fdsLeaked)} fd(s) {result.fdsLeaked} and "
                f"{result.processesLeaked} process(es)"
            )
    elif isinstance(result, LoadResult):
        if result.crossTalk or result.wrongOutput or not result.processes:
            problems.append(
                f"{result.crossTalk} cross-talk, {result.wrongOutput} wrong outputs "
                f"in {result.processes} processes"
            )
    elif isinstance(result, SlowResult):
        if not result.intact:
            problems.append(
                f"output not intact: {result.bytesReceived} bytes, first bad offset "
                f"{result.firstBadOffset}"
            )
        if result.rssGrowth > RSS_GROWTH_BOUND:
            problems.append(f"RSS grew by {result.rssGrowth} bytes (bound {RSS_GROWTH_BOUND})")
    elif isinstance(result, HostileResult):
        problems += hostileProblems(result, timed=timed)
    return problems


__all__ = [
    "FULL",
    "QUICK",
    "RSS_GROWTH_BOUND",
    "SCENARIOS",
    "WRITER",
    "Common",
    "FaultsResult",
    "FramesResult",
    "LoadResult",
    "PatternChecker",
    "SlowResult",
    "faults",
    "fuzzFrame",
    "fuzzFrames",
    "load",
    "poll",
    "slowConsumer",
    "startParams",
    "verdict",
]
