"""twisted-exec: a Twisted-native, wire-compatible Codex exec-server executor."""

__version__ = "0.1.0"
