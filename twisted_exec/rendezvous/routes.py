"""The router's route table: which harness and which executor connection hold each stream.

Sans-IO bookkeeping only, with the indexes that keep every per-frame operation O(1) in the
number of routes (a harness may hold thousands of streams): the route keys of each peer, and,
per peer, how many routes join it to each counterpart (what flow control pauses). The rules of
when a route is made or ended are the :class:`~.router.Router`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: A route's key: ``(executor id, stream id)``.
RouteKey = tuple[str, str]


@dataclass
class Route:
    executorId: str
    streamId: str
    harness: Any  # IRelayPeer
    executor: Any  # IRelayPeer: the executor connection the stream was opened on

    @property
    def key(self) -> RouteKey:
        return (self.executorId, self.streamId)


class RouteTable:
    """Routes by key, indexed by peer, counted by executor id."""

    def __init__(self) -> None:
        self._routes: dict[RouteKey, Route] = {}
        self._byPeer: dict[Any, set[RouteKey]] = {}  # peer -> its route keys
        self._links: dict[Any, dict[Any, int]] = {}  # peer -> counterpart -> routes between
        self._streams: dict[str, int] = {}  # executor id -> routes

    def get(self, key: RouteKey) -> Route | None:
        return self._routes.get(key)

    def add(self, route: Route) -> None:
        key = route.key
        self._routes[key] = route
        self._byPeer.setdefault(route.harness, set()).add(key)
        self._byPeer.setdefault(route.executor, set()).add(key)
        for peer, other in ((route.harness, route.executor), (route.executor, route.harness)):
            counts = self._links.setdefault(peer, {})
            counts[other] = counts.get(other, 0) + 1
        self._streams[route.executorId] = self._streams.get(route.executorId, 0) + 1

    def drop(self, key: RouteKey) -> Route | None:
        """Forget the route at ``key``; returns it (``None`` if there was none)."""
        route = self._routes.pop(key, None)
        if route is None:
            return None
        self._unindex(route.harness, key)
        self._unindex(route.executor, key)
        for peer, other in ((route.harness, route.executor), (route.executor, route.harness)):
            counts = self._links.get(peer)
            if counts is not None:
                left = counts.get(other, 0) - 1
                if left > 0:
                    counts[other] = left
                else:
                    counts.pop(other, None)
                    if not counts:
                        del self._links[peer]
        left = self._streams.get(route.executorId, 0) - 1
        if left > 0:
            self._streams[route.executorId] = left
        else:
            self._streams.pop(route.executorId, None)
        return route

    def keysOf(self, peer: Any) -> list[RouteKey]:
        """``peer``'s route keys, sorted (a stable order for the resets sent on its loss)."""
        return sorted(self._byPeer.get(peer, set()))

    def forgetPeer(self, peer: Any) -> None:
        self._byPeer.pop(peer, None)

    def counterparts(self, peer: Any) -> list[Any]:
        """The distinct peers ``peer`` has routes with."""
        return list(self._links.get(peer, ()))

    def count(self) -> int:
        return len(self._routes)

    def countOf(self, peer: Any) -> int:
        return len(self._byPeer.get(peer, ()))

    def streamCount(self, executorId: str) -> int:
        return self._streams.get(executorId, 0)

    def _unindex(self, peer: Any, key: RouteKey) -> None:
        keys = self._byPeer.get(peer)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._byPeer[peer]
