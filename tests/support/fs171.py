"""The 0.171 filesystem tests' shared input: a complete set of ``fs/walk`` options.

0.171 requires every option (a missing one is a params error), so each walk test needs all
five; with one set the parameter, websocket, walker and differential tests walk the same way.
"""

from __future__ import annotations

from typing import Any

#: Every ``fs/walk`` option, at values no test directory reaches (tests override one at a time).
WALK_OPTIONS: dict[str, Any] = {
    "maxDepth": 10,
    "maxDirectories": 100,
    "maxEntries": 1000,
    "followDirectorySymlinks": False,
    "pruneHiddenDirectories": False,
}
