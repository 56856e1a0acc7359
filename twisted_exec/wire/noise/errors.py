"""Errors of the Noise layer.

Messages are fixed strings fit for a log line: they never carry key material, plaintext,
authorization strings or peer-controlled text.
"""

from __future__ import annotations


class NoiseError(Exception):
    """A Noise handshake, transport, framing or ordering failure; the stream must end."""


class NoiseKeyError(NoiseError):
    """Public key material from the registry (JSON) or the peer is unusable."""
