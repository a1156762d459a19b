"""Per-user debounce of list recomputes.

A user whose list was recomputed less than ``interval_s`` ago is not recomputed again at once:
the recompute is *deferred* to when the interval ends (one recompute for however many events
arrive meanwhile), and the worker runs deferred recomputes from its timer or the next batch.
State is always updated at once; only the recall + ranking work is postponed. Deferred users are
dropped on a rebalance (their partitions may have moved; the new owner recomputes on the next
event). With ``interval_s == 0`` nothing is ever deferred.
"""

from __future__ import annotations

from collections.abc import Iterable


class Debouncer:
    def __init__(self, interval_s: float, max_users: int = 1_000_000) -> None:
        self.interval_s = interval_s
        self.max_users = max_users
        self.last: dict[str, float] = {}  # user key -> time of the last recompute
        self.deferred: dict[str, float] = {}  # user key -> when its recompute is due

    def split(self, keys: Iterable[str], now: float) -> tuple[list[str], list[str]]:
        """(recompute now, deferred) among ``keys``; deferred ones are remembered."""
        if self.interval_s <= 0:
            return list(keys), []
        now_keys, later = [], []
        for key in keys:
            last = self.last.get(key)
            if last is None or now - last >= self.interval_s:
                now_keys.append(key)
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
        for key in keys:
            self.last[key] = now
            self.deferred.pop(key, None)
        if len(self.last) > self.max_users:  # forget users idle for longer than the interval
            self.last = {k: t for k, t in self.last.items() if now - t < self.interval_s}

    def clear(self) -> None:
        self.deferred.clear()
