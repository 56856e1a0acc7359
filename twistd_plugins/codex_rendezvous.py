"""twistd plugin: ``twistd -n codex-rendezvous --listen http://127.0.0.1:8765``."""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService, IServiceMaker
from twisted.plugin import IPlugin
from zope.interface import implementer


@implementer(IServiceMaker, IPlugin)
class _RendezvousServiceMaker:
    tapname = "codex-rendezvous"
    description = "An executor registry and relay rendezvous for Codex exec-server executors."

    @property
    def options(self) -> Any:
        from twisted_exec.net.autobahn_nvx import installLeanAccelerators

        installLeanAccelerators()  # before the rendezvous imports autobahn (net/autobahn_nvx)
        from twisted_exec.rendezvous.service import RendezvousOptions

        return RendezvousOptions

    def makeService(self, options: Any) -> IService:
        from twisted_exec.rendezvous.service import makeService

        return makeService(options)


codexRendezvous = _RendezvousServiceMaker()  # noqa: N816 (twistd finds it by this name)
