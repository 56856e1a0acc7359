"""A stdio executor without twistd: ``python -m twisted_exec.executor.stdio_main``.

Harnesses and the conformance script spawn it; it is the composition of an :class:`Executor` and
the stdio transport, so it lives above both.
"""

from __future__ import annotations

import sys

from twisted_exec.executor.transports.stdio import makeStdioService


def main() -> None:  # pragma: no cover - exercised by the subprocess tests
    """``python -m twisted_exec.executor.stdio_main``: a stdio executor, logs on stderr, exit
    0 on stdin EOF."""
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver

    from twisted_exec.executor.executor import Executor

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=True)
    executor = Executor(reactor)
    service = makeStdioService(reactor, executor.processorFactory)
    service.startService()
    # before the reactor stops, so that its Deferred (the killed children reaped) is waited for
    reactor.addSystemEventTrigger(  # type: ignore[attr-defined]
        "before", "shutdown", executor.shutdown
    )
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":  # pragma: no cover
    main()
