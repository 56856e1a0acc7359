"""Reset reasons the rendezvous writes on a stream: harness, rendezvous and tests agree on them."""

from __future__ import annotations

EXECUTOR_DISCONNECTED = "executor disconnected"


EXECUTOR_NOT_CONNECTED = "executor not connected"


STREAM_IN_USE = "stream_id in use by another harness"


HARNESS_DISCONNECTED = "harness disconnected"
