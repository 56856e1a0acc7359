"""The JSON-RPC methods, one module per domain, and the registry the processor dispatches through.

``buildRegistry()`` (``table.py``) is the executor's table; see ``registry.py`` for how a
request picks its dialect (0.131 or 0.171) and how ``environmentInfo.capabilities`` follow from
what is registered.
"""

from twisted_exec.executor.methods.registry import (
    CAPABILITY_NAMES,
    Method,
    MethodRegistry,
    pathDialect,
)
from twisted_exec.executor.methods.table import buildRegistry

__all__ = ["CAPABILITY_NAMES", "Method", "MethodRegistry", "buildRegistry", "pathDialect"]
