"""Who goes next within one CAMS account: priority first, then fair turns between flows. Pure.

In the spirit of the API server's Priority and Fairness: priority levels are strict (a user's change goes
before a retry, a retry before a routine re-check, in every namespace), and within a level the flows, one
per namespace, take turns: one item of each flow that has something waiting, round and round. A flow
that joins goes to the back of the round, so a namespace with one change waits at most one item of each
other namespace, however many those have queued. Within a flow, the items may name a second key
(`within`) whose values take turns in the same way inside the flow's turns; otherwise, and within that,
first come, first served. This is deficit round robin with equal costs, which is what fair queuing comes
to when every item costs one call.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class FairQueue(Generic[T]):
    def __init__(self) -> None:
        # priority -> flows in the order of their next turn -> their `within` keys, likewise -> items, oldest
        # first
        self._levels: dict[int, OrderedDict[Hashable, OrderedDict[Hashable, deque[T]]]] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def push(self, item: T, *, flow: Hashable, priority: int, within: Hashable = None) -> None:
        level = self._levels.setdefault(priority, OrderedDict())
        turns = level.get(flow)
        if turns is None:
            turns = level[flow] = OrderedDict()
        items = turns.get(within)
        if items is None:
            items = turns[within] = deque()
        items.append(item)
        self._size += 1

    def pop(self) -> T | None:
        """The next item: the most urgent level's flow whose turn it is."""
        if not self._levels:
            return None
        priority = min(self._levels)
        level = self._levels[priority]
        flow, turns = next(iter(level.items()))
        within, items = next(iter(turns.items()))
        item = items.popleft()
        if items:
            turns.move_to_end(within)  # its next item waits for the turn of every other key of the flow
        else:
            del turns[within]
        if turns:
            level.move_to_end(flow)  # its next item waits for every other flow's turn
        else:
            del level[flow]
            if not level:
                del self._levels[priority]
        self._size -= 1
        return item

    def drain(self) -> list[T]:
        """Everything, in the order it would have come out."""
        out = []
        while (item := self.pop()) is not None:
            out.append(item)
        return out
