"""Remote mode: relay frames, per-stream demux, registry client, connector and service."""

from twisted_exec.executor.transports.relay.registry import RegistryError, RemoteConfig
from twisted_exec.executor.transports.relay.service import RemoteExecutorService, makeRemoteService

__all__ = ["RegistryError", "RemoteConfig", "RemoteExecutorService", "makeRemoteService"]
