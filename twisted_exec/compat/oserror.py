"""An ``OSError`` as the reference reports it: musl's strerror text and Rust's error kinds."""

from __future__ import annotations

import errno

from twisted_exec.compat.musl_strerror import MUSL_STRERROR, UNKNOWN
from twisted_exec.wire.errors import INTERNAL_ERROR, INVALID_REQUEST, NOT_FOUND, RpcError


def osErrorMessage(err: OSError) -> str:
    """``std::io::Error``'s Display in the musl-linked reference: ``<strerror> (os error N)``."""
    if err.errno is None:
        return str(err)
    return f"{MUSL_STRERROR.get(err.errno, UNKNOWN)} (os error {err.errno})"


def fromOSError(err: OSError) -> RpcError:
    """The reference's fs error mapping, by Rust's ``io::ErrorKind``.

    NotFound → -32004; PermissionDenied and InvalidInput (EACCES, EPERM, EINVAL) → -32600;
    everything else → -32603.
    """
    if err.errno is None:
        return RpcError(INTERNAL_ERROR, str(err))
    if err.errno == errno.ENOENT:
        code = NOT_FOUND
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EINVAL):
        code = INVALID_REQUEST
    else:
        code = INTERNAL_ERROR
    return RpcError(code, osErrorMessage(err))
