"""Co-visitation item-to-item index, maintained from the stream and seedable offline.

When a user interacts with item ``j``, ``j`` is co-counted with the user's previous ``window``
items (both directions), weighted by the event type and by how close the two events are in the
sequence. Each item keeps its strongest ``max_neighbors`` neighbours (rows are pruned when they
grow to twice that), and at most ``max_items`` items keep a row: past it the least recently
updated tenth of the rows is dropped in one pass (amortised over the ``max_items / 10`` new rows
that fill it again), so memory is bounded by ``max_items * 2 * max_neighbors`` counts. A dropped
item may still be another row's neighbour; it gets a new row on its next co-count.

Scores are conditional: ``P(j | i) ~ c(i, j) / total(i)``, so popular items do not dominate.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from streams.contracts.events import Id

TYPE_WEIGHTS = {"view": 0.5, "click": 1.0, "cart": 2.0, "order": 3.0}


@dataclass(frozen=True, slots=True)
class CoVisitConfig:
    window: int = 5
    max_neighbors: int = 100
    max_items: int = 1_000_000  # rows kept (SIDSTREAM_COVISIT_MAX_ITEMS)


class _Top:
    """A row's ``k`` strongest neighbours, raw counts, best first; kept up to date by every
    co-count of the row (:meth:`bump`) instead of sorting the row again at each recall."""

    __slots__ = ("ids", "k", "neg")

    def __init__(self, k: int, row: dict[Id, float]) -> None:
        # a C sort beats heapq.nlargest's Python key calls here (ties keep the row's order)
        best = sorted(row.items(), key=itemgetter(1), reverse=True)[:k]
        self.k = k
        self.ids: list[Id] = [j for j, _ in best]
        self.neg: list[float] = [-c for _, c in best]  # negated counts: ascending, for bisect

    def bump(self, item: Id, count: float) -> None:
        """``item``'s count rose to ``count``: move it up, or in (pushing the weakest out)."""
        ids, neg = self.ids, self.neg
        try:
            i = ids.index(item)
        except ValueError:
            if len(ids) >= self.k:
                if -count >= neg[-1]:
                    return  # not above the weakest kept one: ties keep the older neighbour
                ids.pop()
                neg.pop()
        else:
            del ids[i], neg[i]
        pos = bisect_right(neg, -count)  # after equal counts: ties keep the older one first
        ids.insert(pos, item)
        neg.insert(pos, -count)


class CoVisitation:
    def __init__(self, config: CoVisitConfig | None = None) -> None:
        self.config = config or CoVisitConfig()
        self.rows: dict[Id, dict[Id, float]] = {}
        self.totals: dict[Id, float] = {}
        # item -> its top-k neighbours, built on the first recall that reads the row, then kept
        # up to date by ``_add`` (every recompute of a user reads the rows of their recent
        # items, which the event behind it has just changed: re-sorting them was the hot spot)
        self._top: dict[Id, _Top] = {}
        self._stamp: dict[Id, int] = {}  # item -> the update that last changed its row
        self._tick = 0

    def __len__(self) -> int:
        return len(self.rows)

    def structures(self) -> tuple[dict[Id, Any], ...]:
        """Every per-item table the channel keeps (what its memory gauge measures)."""
        return self.rows, self.totals, self._stamp, self._top

    def update(self, previous: Sequence[Id], item: Id, weight: float = 1.0) -> None:
        """Co-count ``item`` with the last ``window`` items of ``previous`` (oldest first)."""
        recent = previous[-self.config.window:]
        t = self._tick = self._tick + 1
        stamp = self._stamp
        for distance, other in enumerate(reversed(recent), start=1):
            if other == item:
                continue
            w = weight / distance
            stamp[item] = stamp[other] = t  # before _add: a row it creates is the newest
            self._add(item, other, w)
            self._add(other, item, w)

    def add_sequence(self, items: Sequence[Id], weight: float = 1.0) -> None:
        """Co-count a whole chronological sequence (offline seeding)."""
        for pos in range(1, len(items)):
            self.update(items[max(0, pos - self.config.window):pos], items[pos], weight)

    def neighbors(self, item: Id, k: int) -> list[tuple[Id, float]]:
        """Top ``k`` neighbours of ``item`` with conditional scores in (0, 1], best first."""
        top = self._top_of(item, k)
        if top is None:
            return []
        total = self.totals[item]
        return [(j, -c / total) for j, c in zip(top.ids, top.neg, strict=True)]

    def accumulate(self, item: Id, k: int, weight: float, out: dict[Id, float]) -> None:
        """``out[j] += weight * score(j | item)`` for ``item``'s top ``k`` neighbours ``j``:
        the co-visitation channel's inner loop, without building the scored list."""
        top = self._top_of(item, k)
        if top is None:
            return
        f = -weight / self.totals[item]
        get = out.get
        for j, c in zip(top.ids, top.neg, strict=True):
            out[j] = get(j, 0.0) + f * c

    def _top_of(self, item: Id, k: int) -> _Top | None:
        top = self._top.get(item)
        if top is not None and top.k == k:
            return top
        row = self.rows.get(item)
        if not row:
            return None
        top = self._top[item] = _Top(k, row)  # one k per item is kept: the channel's
        return top

    def _add(self, a: Id, b: Id, w: float) -> None:
        row = self.rows.get(a)
        if row is None:
            row = self.rows[a] = {}
            if len(self.rows) > self.config.max_items:
                self._evict()
        count = row[b] = row.get(b, 0.0) + w
        self.totals[a] = self.totals.get(a, 0.0) + w
        top = self._top.get(a)
        if top is not None:
            top.bump(b, count)
        if len(row) > 2 * self.config.max_neighbors:
            self._prune(a, row)

    def _prune(self, a: Id, row: dict[Id, float]) -> None:
        keep = heapq.nlargest(self.config.max_neighbors, row.items(), key=lambda kv: kv[1])
        self.rows[a] = kept = dict(keep)
        top = self._top.get(a)
        if top is not None and not all(j in kept for j in top.ids):  # k > max_neighbors, or
            del self._top[a]  # ties at the cut went the other way: rebuilt on the next read

    def _evict(self) -> None:
        """Drop the least recently updated rows, down to 90 % of ``max_items`` (ties: the
        older row first); rows of the update running now are the newest, so they stay."""
        keep = max(1, self.config.max_items - self.config.max_items // 10)
        stamp = self._stamp
        for item in sorted(self.rows, key=stamp.__getitem__)[:len(self.rows) - keep]:
            del self.rows[item], self.totals[item], stamp[item]
            self._top.pop(item, None)

    # --- (de)serialisation for the offline seed: ids keep their JSON type ---
    def to_rows(self) -> list[list[object]]:
        return [[item, self.totals[item], [[j, c] for j, c in row.items()]]
                for item, row in self.rows.items()]

    @classmethod
    def from_rows(cls, rows: Iterable[list[object]], config: CoVisitConfig | None = None
                  ) -> CoVisitation:
        cv = cls(config)
        for item, total, row in rows:
            assert isinstance(row, list)
            cv.rows[item] = {j: float(c) for j, c in row}  # type: ignore[index]
            cv.totals[item] = float(total)  # type: ignore[arg-type, index]
            cv._stamp[item] = 0  # type: ignore[index]
        if len(cv.rows) > cv.config.max_items:  # a seed larger than the bound: the strongest
            for item in sorted(cv.rows, key=cv.totals.__getitem__)[:-cv.config.max_items]:
                del cv.rows[item], cv.totals[item], cv._stamp[item]
        return cv
