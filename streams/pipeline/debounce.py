"""Per-user debounce of list recomputes.

A user whose list was recomputed less than ``interval_s`` ago is not recomputed again at once:
the recompute is *deferred* to when the interval ends (one recompute for however many events
arrive meanwhile), and the worker runs deferred recomputes from its timer or the next batch.
State is always updated at once; only the recall + ranking work is postponed. Deferred users are
dropped on a rebalance (their partitions may have moved; the new owner recomputes on the next
event). With ``interval_s == 0`` nothing is ever deferred. At most ``max_users`` recompute times
are kept (``SIDSTREAM_DEBOUNCE_MAX_USERS``), least recently recomputed forgotten first (in O(1)
per recompute), and at most as many deferred users: a forgotten user's next recompute, or one
that would overfill the deferred set, is simply not postponed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable


class Debouncer:
    def __init__(self, interval_s: float, max_users: int = 1_000_000) -> None:
        self.interval_s = interval_s
        self.max_users = max_users
        # user key -> time of the last recompute, oldest first
        self.last: OrderedDict[str, float] = OrderedDict()
        self.deferred: dict[str, float] = {}  # user key -> when its recompute is due

    def split(self, keys: Iterable[str], now: float) -> tuple[list[str], list[str]]:
        """(recompute now, deferred) among ``keys``; deferred ones are remembered."""
        if self.interval_s <= 0:
            return list(keys), []
        now_keys, later = [], []
        for key in keys:
            last = self.last.get(key)
            if last is None or now - last >= self.interval_s or (
                    key not in self.deferred and len(self.deferred) >= self.max_users):
                now_keys.append(key)  # the deferred set is full: no postponing
            else:
                self.deferred.setdefault(key, last + self.interval_s)
                later.append(key)
        return now_keys, later

    def due(self, now: float) -> list[str]:
        """Deferred users whose interval has ended (removed from the deferred set)."""
        keys = [k for k, t in self.deferred.items() if t <= now]
        for k in keys:
            del self.deferred[k]
        return keys

    def next_due(self) -> float | None:
        return min(self.deferred.values(), default=None)

    def computed(self, keys: Iterable[str], now: float) -> None:
        if self.interval_s <= 0:
            return
        last = self.last
        for key in keys:
            last[key] = now
            last.move_to_end(key)
            self.deferred.pop(key, None)
        while last:  # oldest first: past the interval (nothing to postpone) or the bound
            oldest, at = next(iter(last.items()))
            if len(last) <= self.max_users and now - at < self.interval_s:
                break
            del last[oldest]

    def clear(self) -> None:
        self.deferred.clear()
