"""``process/*`` in both dialects, around the session's one ``ProcessTable``.

0.171 differences (probed on the 0.171.0 binary):

- ``process/start`` params are ``WireExecParams`` (14 fields): ``cwd`` is a ``file:`` URI, and
  ``metadata {threadId (a UUID), toolCallId}``, ``shellSnapshot``, ``sandbox``,
  ``enforceManagedNetwork``, ``managedNetwork`` and ``networkProxy`` are accepted. We have no
  sandbox and no managed network, so they change nothing, and the result says so honestly:
  ``{"processId", "sandboxType": "none"}`` (0.171's answer for an unsandboxed process). A cwd that
  names no local path is -32602 ``cwd URI `<uri>` is not valid on this exec-server host: ...``;
  spawn failures carry ``data: {kind: spawnNotFound | spawnPermissionDenied | spawnFailed}``.
- ``process/read`` adds ``sandboxDenied: false``, and ``nextSeq`` runs past ``exited`` and
  ``closed`` once every chunk has been returned; ``process/exited`` adds ``sandboxDenied``.
- a piped process killed by a signal exits with 128 + the signal (130 after ``process/signal``
  ``interrupt``, 137 after ``process/terminate``; 0.131 reports -1); a pty process reports 1
  in both dialects.
- ``process/write`` requires ``writeId``; a repeated id answers ``accepted`` and writes nothing.
- ``process/signal {processId, signal: "interrupt"}`` → ``{}``, also for an unknown process.
"""

from __future__ import annotations

from typing import Any

from twisted_exec.compat import params
from twisted_exec.compat.fileuri import FileUri, ForeignUriError
from twisted_exec.compat.params import (
    Field,
    base64Bytes,
    boolean,
    mapOf,
    optional,
    sequenceOf,
    string,
    struct,
)
from twisted_exec.compat.params171 import anyMap, decode171, pathUri, uuidString, variant
from twisted_exec.compat.record import frozen
from twisted_exec.executor.core.dialect import Dialect
from twisted_exec.executor.methods.fs import SANDBOX_171
from twisted_exec.executor.methods.registry import Method, MethodRegistry
from twisted_exec.wire.errors import INTERNAL_ERROR, RpcError, invalidParams

EXEC = "exec"


@struct(
    "ExecMetadata",
    Field("threadId", optional(uuidString), False, seqDefault=True),
    Field("toolCallId", optional(string), False, seqDefault=True),
)
@frozen
class ExecMetadata:
    threadId: str | None = None
    toolCallId: str | None = None


def _metadata(value: object) -> ExecMetadata:
    return ExecMetadata.fromJson(value)  # type: ignore[attr-defined,no-any-return]


def _shellSnapshot(value: object) -> dict[str, Any]:
    snapshot = anyMap("ShellSnapshotRequest", ("scopeId", "shell"))(value)
    string(snapshot["scopeId"])
    shell = anyMap("ShellInfo", ("name", "path"))(snapshot["shell"])
    string(shell["name"])
    string(shell["path"])
    return snapshot


def _networkProxy(value: object) -> dict[str, Any]:
    launch = anyMap("RemoteNetworkProxyLaunchConfig", ("proxy",))(value)
    anyMap("NetworkProxyConfig", ("enabled",))(launch["proxy"])
    return launch


# Which fields an array may leave off (serde's sequence form) was probed: only pipeStdin and
# enforceManagedNetwork, the non-Option ones with defaults.
@struct(
    "WireExecParams",
    Field("processId", string),
    Field("metadata", optional(_metadata), False),
    Field("argv", sequenceOf(string)),
    Field("cwd", pathUri),
    Field("envPolicy", optional(params._envPolicy), False),
    Field("shellSnapshot", optional(_shellSnapshot), False),
    Field("env", mapOf(string)),
    Field("tty", boolean),
    Field("pipeStdin", boolean, False, seqDefault=True),
    Field("arg0", optional(string), False),
    SANDBOX_171,
    Field("enforceManagedNetwork", boolean, False, seqDefault=True),
    Field("managedNetwork", optional(anyMap("ManagedNetworkSandboxContext")), False),
    Field("networkProxy", optional(_networkProxy), False),
)
@frozen
class Exec171:
    processId: str
    argv: list[str]
    cwd: FileUri
    env: dict[str, str]
    tty: bool
    metadata: ExecMetadata | None = None
    envPolicy: params.ExecEnvPolicy | None = None
    shellSnapshot: dict[str, Any] | None = None
    pipeStdin: bool | None = None
    arg0: str | None = None
    sandbox: Any = None
    enforceManagedNetwork: bool | None = None
    managedNetwork: dict[str, Any] | None = None
    networkProxy: dict[str, Any] | None = None


@struct(
    "WriteParams",
    Field("processId", string),
    Field("chunk", base64Bytes),
    Field("writeId", string),
)
@frozen
class Write171:
    processId: str
    chunk: bytes
    writeId: str


@struct("SignalParams", Field("processId", string), Field("signal", variant("interrupt")))
@frozen
class Signal171:
    processId: str
    signal: str


def _processes(ctx: Any) -> Any:
    return ctx.session.resources.processes


_SPAWN_KINDS = {
    "No such file or directory (os error 2)": "spawnNotFound",
    "Permission denied (os error 13)": "spawnPermissionDenied",
}


async def _start171(ctx: Any, p: Exec171) -> dict[str, Any]:
    try:
        cwd = p.cwd.hostPath()
    except ForeignUriError as err:
        raise invalidParams(
            f"cwd URI `{p.cwd.text}` is not valid on this exec-server host: {err.message}"
        ) from None
    start = params.ExecParams(
        processId=p.processId,
        argv=p.argv,
        cwd=cwd,
        env=p.env,
        tty=p.tty,
        envPolicy=p.envPolicy,
        pipeStdin=p.pipeStdin,
        arg0=p.arg0,
    )
    try:
        result = await _processes(ctx).start(start, dialect=Dialect.V171)
    except RpcError as err:
        if err.code != INTERNAL_ERROR:
            raise
        kind = _SPAWN_KINDS.get(err.message, "spawnFailed")
        raise RpcError(err.code, err.message, data={"kind": kind}) from None
    return {"processId": result["processId"], "sandboxType": "none"}


async def _read171(ctx: Any, p: params.ReadParams) -> dict[str, Any]:
    return await _processes(ctx).read(p, dialect=Dialect.V171)  # type: ignore[no-any-return]


def _write171(ctx: Any, p: Write171) -> dict[str, Any]:
    write = params.WriteParams(processId=p.processId, chunk=p.chunk)
    return _processes(ctx).write(write, writeId=p.writeId)  # type: ignore[no-any-return]


def _signal171(ctx: Any, p: Signal171) -> dict[str, Any]:
    _processes(ctx).interrupt(p.processId)
    return {}


def register(registry: MethodRegistry) -> None:
    def add131(name: str, paramsType: type[Any], method: str) -> None:
        registry.add(
            Method(
                name,
                Dialect.V131,
                paramsType.fromJson,  # type: ignore[attr-defined]
                lambda ctx, p: getattr(_processes(ctx), method)(p),
                EXEC,
            )
        )

    add131("process/start", params.ExecParams, "start")
    add131("process/read", params.ReadParams, "read")
    add131("process/write", params.WriteParams, "write")
    add131("process/terminate", params.TerminateParams, "terminate")

    def add171(name: str, paramsType: type[Any], call: Any) -> None:
        decode = decode171(paramsType.fromJson)  # type: ignore[attr-defined]
        registry.add(Method(name, Dialect.V171, decode, call, EXEC))

    add171("process/start", Exec171, _start171)
    add171("process/read", params.ReadParams, _read171)
    add171("process/write", Write171, _write171)
    add171("process/signal", Signal171, _signal171)
    add171(
        "process/terminate",
        params.TerminateParams,
        lambda ctx, p: _processes(ctx).terminate(p),
    )

    # Our extensions, in both dialects (the references answer -32601; docs/decisions.md):
    # ``codex-exec run -i`` ends a piped stdin, ``run --tty`` follows the terminal's size.
    add131("process/closeStdin", params.CloseStdinParams, "closeStdin")
    add131("process/resize", params.ResizeParams, "resize")
    add171("process/closeStdin", params.CloseStdinParams, lambda c, p: _processes(c).closeStdin(p))
    add171("process/resize", params.ResizeParams, lambda c, p: _processes(c).resize(p))


__all__ = ["Exec171", "ExecMetadata", "Signal171", "Write171", "register"]
