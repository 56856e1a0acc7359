"""Remote mode: relay frames, per-stream demux, registry client, connector and service."""

from .registry import RegistryError, RemoteConfig
from .service import RemoteExecutorService, makeRemoteService

__all__ = ["RegistryError", "RemoteConfig", "RemoteExecutorService", "makeRemoteService"]
