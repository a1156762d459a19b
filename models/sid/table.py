"""Semantic-ID table: item id <-> SID (L quantizer codes + 1 collision token).

Items whose L codes coincide get a trailing collision index 0, 1, 2, ... (in item-id order at
build time, in arrival order afterwards). The collision vocabulary is capped at ``dup_vocab``; an
item that would overflow it moves to its next-nearest last-level code with room (the quantizer
supplies a ranked list of candidates), so every item keeps a unique SID.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)


class SidOverflowError(ValueError):
    """No candidate prefix has a free collision slot."""


@dataclass
class SidTable:
    n_levels: int  # quantizer levels (the SID has n_levels + 1 tokens)
    codebook_size: int
    dup_vocab: int
    sids: dict[int, tuple[int, ...]] = field(default_factory=dict)  # item -> SID
    prefix_count: Counter[tuple[int, ...]] = field(default_factory=Counter)
    moved: int = 0  # items that left their nearest last code because of overflow

    @property
    def vocab_sizes(self) -> tuple[int, ...]:
        return (self.codebook_size,) * self.n_levels + (self.dup_vocab,)

    def add(self, item: int, codes: np.ndarray, last_candidates: np.ndarray | None = None
            ) -> tuple[int, ...]:
        """Give ``item`` a unique SID from its ``codes`` [L] (idempotent for known items)."""
        if item in self.sids:
            return self.sids[item]
        cands = [int(codes[-1])] if last_candidates is None else [int(c) for c in last_candidates]
        head = tuple(int(c) for c in codes[:-1])
        for rank, last in enumerate(cands):
            prefix = (*head, last)
            n = self.prefix_count[prefix]
            if n < self.dup_vocab:
                self.prefix_count[prefix] = n + 1
                self.moved += rank > 0
                sid = (*prefix, n)
                self.sids[item] = sid
                return sid
        raise SidOverflowError(f"item {item}: all {len(cands)} candidate prefixes are full "
                               f"(dup_vocab={self.dup_vocab})")

    def put(self, item: int, sid: tuple[int, ...]) -> None:
        """Record an already assigned SID (a saved table, a copy of one). The prefix's next
        collision index stays above every index in use, so a table holding only some of the
        items it was built from (a gap) never hands out a taken SID."""
        self.sids[item] = sid
        head = sid[:-1]
        self.prefix_count[head] = max(self.prefix_count[head], sid[-1] + 1)

    def array(self, items: np.ndarray) -> np.ndarray:
        """SIDs of ``items`` as [N, L+1] int64 (-1 rows for unknown items)."""
        out = np.full((len(items), self.n_levels + 1), -1, np.int64)
        for r, i in enumerate(items):
            sid = self.sids.get(int(i))
            if sid is not None:
                out[r] = sid
        return out

    def stats(self) -> dict[str, float]:
        """Collision rate (share of items whose code prefix is shared), max depth, moves."""
        n = len(self.sids)
        shared = sum(c for c in self.prefix_count.values() if c > 1)
        return {"items": float(n), "prefixes": float(len(self.prefix_count)),
                "collision_rate": shared / max(n, 1),
                "max_collision_depth": float(max(self.prefix_count.values(), default=0)),
                "moved_on_overflow": float(self.moved)}


def build_sid_table(item_ids: np.ndarray, codes: np.ndarray, last_candidates: np.ndarray,
                    codebook_size: int, dup_vocab: int) -> SidTable:
    """SIDs for a catalogue: ``codes`` [N, L], ``last_candidates`` [N, C] ranked last codes."""
    table = SidTable(codes.shape[1], codebook_size, dup_vocab)
    for r in np.argsort(item_ids, kind="stable"):
        table.add(int(item_ids[r]), codes[r], last_candidates[r])
    st = table.stats()
    log.info("SIDs: %d items, collision rate %.3f, max depth %d, moved %d", len(table.sids),
             st["collision_rate"], st["max_collision_depth"], table.moved)
    return table
