"""A stdio executor without twistd: ``python -m twisted_exec.executor.stdio_main``
(console script ``codex-executor-stdio``).

Harnesses and the conformance script spawn it, and so can a client that starts one executor per
session: twistd's own start-up (its option machinery, plugin discovery through ``dropin.cache``,
``pdb``/``profile`` imports) is about as much CPU as the executor's, so this path skips it. It is
the composition of an :class:`Executor` and the stdio transport, so it lives above both.
"""

from __future__ import annotations

import gc
import sys

#: The standard library's OpenSSL bindings: ``ssl`` (which ``http.client``, ``urllib.request``
#: and ``asyncio`` try at import, all three imported by Twisted's core) and ``_hashlib``
#: (``hashlib``'s and ``hmac``'s). A stdio executor uses neither: Twisted's TLS, should an
#: ``http/request`` need it, is pyOpenSSL over cryptography, which links its own OpenSSL, and
#: ``hashlib`` falls back to CPython's built-in sha256 and kin. Loading ``libcrypto.so`` for them
#: was ~4 MiB of the idle executor's RSS (under twistd it is loaded before our code runs).
STDLIB_OPENSSL = ("ssl", "_ssl", "_hashlib")


def main() -> None:  # pragma: no cover - exercised by the subprocess tests
    """``python -m twisted_exec.executor.stdio_main``: a stdio executor, logs on stderr, exit
    0 on stdin EOF. Arguments are ignored (``--listen stdio`` is accepted for symmetry)."""
    # No cyclic collections while ~400 modules load (they free next to nothing and cost ~10 ms
    # of a ~150 ms start); then the start-up objects are frozen out of later collections.
    gc.disable()
    from twisted_exec.net.leanreactor import importReactorDeferringTLS, withoutOptional

    with withoutOptional(*STDLIB_OPENSSL):
        reactor = importReactorDeferringTLS()  # stdio speaks no TLS (net/leanreactor.py)

        from twisted.logger import globalLogBeginner, textFileLogObserver

        from twisted_exec.executor.executor import Executor
        from twisted_exec.executor.transports.stdio import makeStdioService

        executor = Executor(reactor, metrics=False)
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=True)
    service = makeStdioService(reactor, executor.processorFactory)
    service.startService()
    # before the reactor stops, so that its Deferred (the killed children reaped) is waited for
    reactor.addSystemEventTrigger("before", "shutdown", executor.shutdown)
    gc.freeze()
    gc.enable()
    reactor.run()


if __name__ == "__main__":  # pragma: no cover
    main()
