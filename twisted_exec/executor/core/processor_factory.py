"""Builds one :class:`~.processor.ExecProcessor` per connection or relay stream.

Every processor of an executor shares the session registry, the filesystem and the method
table; the factory holds them, and the options every processor gets as the processor's own
keyword arguments (:class:`ProcessorOptions`: one list of them, not a copy per class).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Required, TypedDict, Unpack

from zope.interface import implementer

from twisted_exec.executor.core.dispatch import MethodTable
from twisted_exec.executor.core.interfaces import IProcessorFactory
from twisted_exec.executor.core.limits import Limits
from twisted_exec.executor.core.processor import MAX_QUEUED, ExecProcessor
from twisted_exec.executor.core.session import SessionRegistry


class ProcessorOptions(TypedDict, total=False):
    """The keyword arguments of :class:`~.processor.ExecProcessor` that every processor of
    one factory shares (see it for their meaning)."""

    methods: Required[MethodTable]
    environment: Any
    concurrentRequests: int
    limits: Limits | None


@implementer(IProcessorFactory)
class ExecProcessorFactory:
    """Builds processors that share one session registry and one filesystem."""

    def __init__(
        self,
        registry: SessionRegistry,
        filesystem: Any,
        maxQueued: int | None = MAX_QUEUED,
        *,
        clock: Any = None,
        onRequestDone: Callable[[str, float], None] | None = None,
        **options: Unpack[ProcessorOptions],
    ) -> None:
        self.registry = registry
        self.filesystem = filesystem
        self.maxQueued = maxQueued
        self.clock = clock
        self.onRequestDone = onRequestDone
        #: Read by the relay factory for its per-stream flow control budgets.
        self.limits = options.get("limits") or Limits()
        self._options: ProcessorOptions = {**options, "limits": self.limits}

    def buildProcessor(self, parseErrorContext: str | None) -> ExecProcessor:
        processor = ExecProcessor(
            self.registry, self.filesystem, parseErrorContext, self.maxQueued, **self._options
        )
        processor.clock = self.clock
        processor.onRequestDone = self.onRequestDone
        return processor
