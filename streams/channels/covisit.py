"""Co-visitation item-to-item index, maintained from the stream and seedable offline.

When a user interacts with item ``j``, ``j`` is co-counted with the user's previous ``window``
items (both directions), weighted by the event type and by how close the two events are in the
sequence. Each item keeps its strongest ``max_neighbors`` neighbours (rows are pruned when they
grow to twice that), so memory is bounded by ``n_items * 2 * max_neighbors``.

Scores are conditional: ``P(j | i) ~ c(i, j) / total(i)``, so popular items do not dominate.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter

from streams.contracts.events import Id

TYPE_WEIGHTS = {"view": 0.5, "click": 1.0, "cart": 2.0, "order": 3.0}


@dataclass(frozen=True, slots=True)
class CoVisitConfig:
    window: int = 5
    max_neighbors: int = 100


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

    def __len__(self) -> int:
        return len(self.rows)

    def update(self, previous: Sequence[Id], item: Id, weight: float = 1.0) -> None:
        """Co-count ``item`` with the last ``window`` items of ``previous`` (oldest first)."""
        recent = previous[-self.config.window:]
        for distance, other in enumerate(reversed(recent), start=1):
            if other == item:
                continue
            w = weight / distance
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
        return cv
