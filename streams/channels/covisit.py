"""Co-visitation item-to-item index, maintained from the stream and seedable offline.

When a user interacts with item ``j``, ``j`` is co-counted with the user's previous ``window``
items (both directions), weighted by the event type and by how close the two events are in the
sequence. Each item keeps its strongest ``max_neighbors`` neighbours (rows are pruned when they
grow to twice that), so memory is bounded by ``n_items * 2 * max_neighbors``.

Scores are conditional: ``P(j | i) ~ c(i, j) / total(i)``, so popular items do not dominate.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter

from streams.contracts.events import Id

TYPE_WEIGHTS = {"view": 0.5, "click": 1.0, "cart": 2.0, "order": 3.0}


@dataclass(frozen=True, slots=True)
class CoVisitConfig:
    window: int = 5
    max_neighbors: int = 100


class CoVisitation:
    def __init__(self, config: CoVisitConfig | None = None) -> None:
        self.config = config or CoVisitConfig()
        self.rows: dict[Id, dict[Id, float]] = {}
        self.totals: dict[Id, float] = {}
        # item -> (k, its top-k neighbours), kept between recalls (every recompute of a user
        # reads the rows of their recent items); ``_add`` drops the entry of the row it changes
        self._top: dict[Id, tuple[int, list[tuple[Id, float]]]] = {}

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
        """Top ``k`` neighbours of ``item`` with conditional scores in (0, 1]; the list is
        shared with later calls until the row changes: do not modify it."""
        cached = self._top.get(item)
        if cached is not None and cached[0] == k:
            return cached[1]
        row = self.rows.get(item)
        if not row:
            return []
        total = self.totals[item]
        # rows hold <= 2 x max_neighbors entries: a C sort beats heapq.nlargest's Python key
        # calls by ~4x there (ties keep insertion order either way)
        best = sorted(row.items(), key=itemgetter(1), reverse=True)[:k]
        top = [(j, c / total) for j, c in best]
        self._top[item] = (k, top)
        return top

    def _add(self, a: Id, b: Id, w: float) -> None:
        row = self.rows.get(a)
        if row is None:
            row = self.rows[a] = {}
        row[b] = row.get(b, 0.0) + w
        self.totals[a] = self.totals.get(a, 0.0) + w
        self._top.pop(a, None)
        if len(row) > 2 * self.config.max_neighbors:
            self._prune(a, row)

    def _prune(self, a: Id, row: dict[Id, float]) -> None:
        keep = heapq.nlargest(self.config.max_neighbors, row.items(), key=lambda kv: kv[1])
        self.rows[a] = dict(keep)

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
