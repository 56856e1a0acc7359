"""Reading an operator's file (a secret, a tokens list) into a one-line configuration error.

A file that cannot be read at start-up is the operator's mistake, not ours: it must end the
program with one line naming the file and the reason, never a traceback. Each caller keeps its
own wording (they match their references' messages); the shape is here once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def readOrFail(read: Callable[[], T], failure: Callable[[OSError], Exception]) -> T:
    """``read()``, or ``failure(error)`` raised (without the OSError chained) when it fails."""
    try:
        return read()
    except OSError as e:
        raise failure(e) from None
