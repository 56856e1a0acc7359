"""The executor's seams: real resources and the suite's fakes all provide their interfaces."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from tests.support.fakes import StubHttp, StubProcesses, StubResources
from tests.test_flow_control import FakeResources as FlowFakeResources
from tests.test_processor import FakeProcesses, FakeResources
from twisted_exec.executor.core.interfaces import (
    IHttpRequester,
    IJsonRpcProcessor,
    IProcessorFactory,
    IProcessTable,
    ISessionResources,
)
from twisted_exec.executor.core.session import Session
from twisted_exec.executor.executor import Executor
from twisted_exec.executor.resources.http_request import HttpRequester
from twisted_exec.executor.resources.processes import ProcessTable


class InterfaceTests(SynchronousTestCase):
    def test_realResources(self) -> None:
        clock = Clock()
        self.assertTrue(verifyObject(IProcessTable, ProcessTable(clock, lambda m, p: None)))
        self.assertTrue(verifyObject(IHttpRequester, HttpRequester(clock, lambda m, p: None)))
        executor = Executor(clock)
        self.addCleanup(executor.shutdown)
        resources = executor._makeResources(Session("s"))
        self.assertTrue(verifyObject(ISessionResources, resources))
        self.assertTrue(verifyObject(IProcessorFactory, executor.processorFactory))
        processor = executor.processorFactory.buildProcessor(None)
        self.assertTrue(verifyObject(IJsonRpcProcessor, processor))

    def test_fakes(self) -> None:
        session = Session("s")
        self.assertTrue(verifyObject(IProcessTable, FakeProcesses()))
        self.assertTrue(verifyObject(ISessionResources, FakeResources(session)))
        self.assertTrue(verifyObject(IProcessTable, StubProcesses()))
        self.assertTrue(verifyObject(IHttpRequester, StubHttp()))
        self.assertTrue(verifyObject(ISessionResources, StubResources(session)))
        self.assertTrue(verifyObject(ISessionResources, FlowFakeResources(session)))
