"""Transport defaults the command line shows, in a module that imports nothing.

``twistd codex-executor --help`` and the option parser need these numbers; importing them from
the transports themselves would load autobahn, twisted.web and protobuf before the first byte of
output (startup time, see bench/startup.py). The transports import them from here.
"""

from __future__ import annotations

#: Largest inbound message (websocket message, stdio line, relay frame): ``--max-message-bytes``.
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # = core/limits.py's Limits.maxMessageBytes

#: Default limit of concurrent streams on one relay websocket (``--max-streams``).
MAX_STREAMS = 4096
