"""The method table: name → dialect → (params type, handler), and how a request picks a dialect.

Each domain module (``process``, ``fs``, ``http``, ``environment``) registers its methods here,
once per dialect where the two generations differ, so a dialect difference lives in one place:
the 0.171 entry of a method decodes 0.171's params (``file:`` URIs, new fields) and shapes 0.171's
result, usually around the same resource call as the 0.131 entry.

Choosing the dialect of a request (``resolve``):

- a method only one dialect has is that dialect's (``environment/info`` is 0.171);
- otherwise the form of its paths decides: a bare absolute path (``/tmp``) is 0.131, a string
  with a URL scheme (``file:///tmp``, also a broken one) is 0.171; so does a field only 0.171
  has (``writeId``, ``metadata``, ``redirectPolicy``, a header's ``valueEnvVar``...);
- otherwise (no path, a relative one) the session's dialect decides: 0.131 until the session
  has sent one 0.171 request, 0.171 from then on (the processor keeps that, see
  ``ExecProcessor``).

Capabilities: ``environmentInfo.capabilities`` is derived from what is registered, so it is
true only for what we implement (a method names the capability it provides; a feature of a
method's params, such as header ``valueEnvVar``, is declared with :meth:`provide`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from twisted_exec.compat.fileuri import hasScheme
from twisted_exec.compat.record import frozen
from twisted_exec.executor.core.dialect import Dialect

#: Every capability 0.171's ``environmentInfo`` carries, in the order it prints them.
CAPABILITY_NAMES: tuple[str, ...] = (
    "networkProxyLaunch",
    "networkProxyReviewDomains",
    "networkProxyTransparentTcp",
    "credentialMasking",
    "credentialMaskingCustomProviders",
    "capabilityDiscoverySandbox",
    "fsWatchMissing",
    "capabilityDiscoveryV2",
    "environmentConfigRead",
    "httpHeaderEnvVars",
    "sandboxedFileStreaming",
    "fileWriteStreaming",
    "shellSnapshotV2",
    "windowsMxc",
    "linuxRootWritePreservesDevices",
    "linuxApprovedRootWritePreservesRestrictions",
)

#: Param keys whose string value is a path; the first one present decides the dialect.
PATH_KEYS = ("path", "cwd", "sourcePath", "destinationPath")
#: Param keys only a 0.171 client sends.
V171_KEYS = (
    "writeId",
    "metadata",
    "shellSnapshot",
    "enforceManagedNetwork",
    "managedNetwork",
    "networkProxy",
    "followSymlinks",
    "redirectPolicy",
)


class MethodContext(Protocol):
    """What a handler may use: the processor that called it (see ``ExecProcessor``)."""

    session: Any
    filesystem: Any
    environment: Any

    def initialize(self, params: Any) -> Any: ...


Decode = Callable[[object], Any]
Handler = Callable[[Any, Any], object]


@frozen
class Method:
    """One row: ``decode`` turns raw params into a typed value (or raises -32602); ``call``
    gets the context and that value and returns a result dict, a Deferred or a coroutine.

    ``category`` is the word of the handshake errors (``client must call initialize before
    using <category> methods``); None lets the method run before ``initialize``.
    """

    name: str
    dialect: Dialect
    decode: Decode
    call: Handler
    category: str | None
    provides: tuple[str, ...] = ()


def pathDialect(params: object) -> Dialect | None:
    """The dialect the form of a request's params asks for, or None when they do not say."""
    if not isinstance(params, Mapping):
        return None
    for key in PATH_KEYS:
        value = params.get(key)
        if isinstance(value, str):
            if value.startswith("/"):
                return Dialect.V131
            if hasScheme(value):
                return Dialect.V171
            return None
    if any(key in params for key in V171_KEYS):
        return Dialect.V171
    headers = params.get("headers")
    if isinstance(headers, list) and any(
        isinstance(h, Mapping) and "valueEnvVar" in h for h in headers
    ):
        return Dialect.V171
    return None


class MethodRegistry:
    """Methods by name and dialect, and the capabilities they add up to."""

    def __init__(self) -> None:
        self._methods: dict[str, dict[Dialect, Method]] = {}
        self._provided: set[str] = set()

    def add(self, method: Method) -> None:
        byDialect = self._methods.setdefault(method.name, {})
        if method.dialect in byDialect:
            raise ValueError(f"{method.name} is already registered for {method.dialect.name}")
        byDialect[method.dialect] = method
        self._provided.update(method.provides)

    def replace(self, method: Method) -> None:
        """Put ``method`` in place of its name and dialect's entry (a later registrar refines a
        method another module registered: ``fs171`` gives 0.171 ``fs/getMetadata`` its
        ``followSymlinks``)."""
        self._methods.setdefault(method.name, {})[method.dialect] = method
        self._provided.update(method.provides)

    def provide(self, *capabilities: str) -> None:
        """Declare capabilities that come with a method's params rather than a method."""
        unknown = set(capabilities) - set(CAPABILITY_NAMES)
        if unknown:
            raise ValueError(f"unknown capabilities {sorted(unknown)}")
        self._provided.update(capabilities)

    def get(self, name: str, dialect: Dialect) -> Method | None:
        return self._methods.get(name, {}).get(dialect)

    def names(self, dialect: Dialect) -> list[str]:
        return sorted(n for n, byDialect in self._methods.items() if dialect in byDialect)

    def resolve(self, name: str, params: object, current: Dialect) -> Method | None:
        """The entry that answers this request (see the module docstring), or None."""
        byDialect = self._methods.get(name)
        if not byDialect:
            return None
        if len(byDialect) == 1:
            return next(iter(byDialect.values()))
        chosen = pathDialect(params) or current
        return byDialect.get(chosen) or byDialect[max(byDialect)]

    def capabilities(self) -> dict[str, bool]:
        """``environmentInfo.capabilities``: true only for what is registered."""
        return {name: name in self._provided for name in CAPABILITY_NAMES}


__all__ = [
    "CAPABILITY_NAMES",
    "Method",
    "MethodContext",
    "MethodRegistry",
    "pathDialect",
]
