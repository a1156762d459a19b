"""Time-decayed item popularity, the cold-start fallback channel.

Each item keeps ``(score, ts)``; an interaction at event time ``t`` first decays the score to
``t`` with the configured half-life, then adds the event-type weight. Decay uses event time, not
wall-clock time, so a replay of old data gives the same ranking as the original stream.
The top list is cached and recomputed at most every ``refresh_s`` of event time. At most
``max_items`` items are scored: a new item past it drops the least popular tenth of them (scores
decayed to now) in one pass, amortised over the ``max_items / 10`` new items that fill it again.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from streams.contracts.events import Id


class DecayedPopularity:
    def __init__(self, half_life_s: float = 3 * 24 * 3600, refresh_s: float = 1.0,
                 top_cap: int = 500, max_items: int = 1_000_000) -> None:
        self.half_life_ms = half_life_s * 1000.0
        self.max_items = max_items
        self.refresh_ms = refresh_s * 1000.0
        self.top_cap = top_cap
        self.items: dict[Id, tuple[float, int]] = {}
        self.now_ms = 0
        self._top: list[tuple[Id, float]] = []
        self._top_at = -1.0

    def __len__(self) -> int:
        return len(self.items)

    def add(self, item: Id, weight: float, ts_ms: int) -> None:
        known = self.items.get(item)
        score, last = (0.0, ts_ms) if known is None else known
        if ts_ms > last:
            score = self._decay(score, ts_ms - last)
            last = ts_ms
        elif ts_ms < last:  # late event: decay its weight instead
            weight = self._decay(weight, last - ts_ms)
        self.items[item] = (score + weight, last)
        self.now_ms = max(self.now_ms, ts_ms)
        if known is None and len(self.items) > self.max_items:
            self._prune()

    def score(self, item: Id, now_ms: int | None = None) -> float:
        now = self.now_ms if now_ms is None else now_ms
        score, last = self.items.get(item, (0.0, now))
        return self._decay(score, max(0, now - last))

    def top(self, k: int) -> list[tuple[Id, float]]:
        """The ``k`` most popular items (``k <= top_cap``) with scores normalised to max 1."""
        if self._top_at < 0 or self.now_ms - self._top_at >= self.refresh_ms:
            self._refresh()
        return self._top[:k]

    def seed(self, counts: Iterable[tuple[Id, float]], ts_ms: int) -> None:
        for item, count in counts:
            self.add(item, float(count), ts_ms)

    def _refresh(self) -> None:
        now = self.now_ms
        best = heapq.nlargest(self.top_cap, ((i, self._decay(s, max(0, now - t)))
                                             for i, (s, t) in self.items.items()),
                              key=lambda kv: kv[1])
        top = best[0][1] if best and best[0][1] > 0 else 1.0
        self._top = [(i, s / top) for i, s in best]
        self._top_at = now

    def _prune(self) -> None:
        """Keep the 90 % most popular of ``max_items`` (scores decayed to now)."""
        keep = max(1, self.max_items - self.max_items // 10)
        now, decay = self.now_ms, self._decay
        best = heapq.nlargest(keep, self.items.items(),
                              key=lambda kv: decay(kv[1][0], max(0, now - kv[1][1])))
        self.items = dict(best)
        self._top_at = -1.0  # the cached top may name a dropped item: refreshed on next read

    def _decay(self, value: float, dt_ms: float) -> float:
        return value * 0.5 ** (dt_ms / self.half_life_ms)
