"""Prefix trie of valid SIDs as dense per-level child tables, for batched constrained decoding.

Level ``l`` holds ``children[l]``: an int32 array [n_nodes_l, V_l]; entry ``[node, code]`` is the
id of the child node at level ``l + 1`` (or, at the last level, the item id), -1 where the
prefix has no such child. Node 0 of level 0 is the root. Masks for a batch of beams are a single
fancy-index ``children[l][nodes] >= 0``. Insertion is in place (tables grow by doubling), so a
catalogue upsert makes its item recallable on the next search.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

NONE = -1
DTYPE = np.int32  # node and item ids: half the memory of int64 (the dense last level is most
# of a trie: 301 MB at a million items); item ids must fit in it


class SidTrie:
    def __init__(self, vocab_sizes: Sequence[int]):
        self.vocab_sizes = tuple(int(v) for v in vocab_sizes)
        self._tables = [np.full((1 if lv == 0 else 16, v), NONE, DTYPE)
                        for lv, v in enumerate(self.vocab_sizes)]
        self._used = [1] + [0] * (len(self.vocab_sizes) - 1)  # nodes in use per level
        self.n_items = 0
        self._paths: tuple[int, torch.Tensor, torch.Tensor] | None = None  # (n_items, ...)
        self._ranges: tuple[int, list[tuple[torch.Tensor, torch.Tensor]]] | None = None

    @property
    def depth(self) -> int:
        return len(self.vocab_sizes)

    @classmethod
    def from_sids(cls, vocab_sizes: Sequence[int], sids: Iterable[tuple[Sequence[int], int]]
                  ) -> SidTrie:
        trie = cls(vocab_sizes)
        for sid, item in sids:
            trie.insert(sid, item)
        return trie

    def _new_node(self, level: int) -> int:
        table = self._tables[level]
        if self._used[level] == table.shape[0]:
            grown = np.full((table.shape[0] * 2, table.shape[1]), NONE, DTYPE)
            grown[: table.shape[0]] = table
            self._tables[level] = grown
        self._used[level] += 1
        return self._used[level] - 1

    def insert(self, sid: Sequence[int], item: int) -> None:
        """Add ``sid`` -> ``item``; raises if the SID is malformed or taken by another item."""
        if len(sid) != self.depth:
            raise ValueError(f"SID {tuple(sid)} has {len(sid)} tokens, trie depth {self.depth}")
        for lv, c in enumerate(sid):
            if not 0 <= c < self.vocab_sizes[lv]:
                raise ValueError(f"SID {tuple(sid)}: code {c} out of range at level {lv}")
        if not 0 <= item <= np.iinfo(DTYPE).max:
            raise ValueError(f"item ids must be in 0..{np.iinfo(DTYPE).max}, got {item}")
        node = 0
        for lv, c in enumerate(sid[:-1]):
            child = int(self._tables[lv][node, c])
            if child == NONE:
                child = self._new_node(lv + 1)
                self._tables[lv][node, c] = child
            node = child
        last = self._tables[-1]
        if last[node, sid[-1]] not in (NONE, item):
            raise ValueError(f"SID {tuple(sid)} already maps to item {last[node, sid[-1]]}")
        self.n_items += last[node, sid[-1]] == NONE
        last[node, sid[-1]] = item

    def lookup(self, sid: Sequence[int]) -> int:
        """Item of a full SID, -1 if the SID is not in the trie."""
        if len(sid) != self.depth:
            return NONE
        node = 0
        for lv, c in enumerate(sid):
            if not 0 <= c < self.vocab_sizes[lv]:
                return NONE
            node = int(self._tables[lv][node, c])
            if node == NONE:
                return NONE
        return node

    def allowed(self, level: int, nodes: np.ndarray) -> np.ndarray:
        """Boolean mask [*nodes.shape, V_level] of codes that extend each prefix node."""
        return self._tables[level][nodes] >= 0

    def table(self, level: int) -> torch.Tensor:
        """Zero-copy torch view of level ``level``'s child table (valid until the next insert)."""
        return torch.from_numpy(self._tables[level][: self._used[level]])

    def n_nodes(self, level: int) -> int:
        return self._used[level]

    def paths(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every item [N] and the node it passes at levels 1..depth-1 [N, depth-1] (cached
        until the next insert)."""
        if self._paths is None or self._paths[0] != self.n_items:
            items: list[int] = []
            nodes: list[list[int]] = []

            def walk(level: int, node: int, path: list[int]) -> None:
                for c in np.flatnonzero(self._tables[level][node] >= 0):
                    child = int(self._tables[level][node, c])
                    if level == self.depth - 1:
                        items.append(child)
                        nodes.append(path)
                    else:
                        walk(level + 1, child, [*path, child])

            walk(0, 0, [])
            self._paths = (self.n_items, torch.tensor(items, dtype=torch.long),
                           torch.tensor(nodes, dtype=torch.long).view(len(items), -1))
        return self._paths[1], self._paths[2]

    def ranges(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per level 1..depth-1: ``(lo, hi)`` [n_nodes] such that the items under node ``n`` are
        ``paths()[0][lo[n]:hi[n]]`` (the walk is depth-first, so every subtree is one run of
        it); empty runs for unused nodes. Cached until the next insert."""
        if self._ranges is None or self._ranges[0] != self.n_items:
            _, nodes = self.paths()
            out = []
            for lv in range(self.depth - 1):
                col, n = nodes[:, lv], self.n_nodes(lv + 1)
                pos = torch.arange(len(col))
                lo = torch.full((n,), len(col), dtype=torch.long).scatter_reduce(
                    0, col, pos, "amin")
                hi = torch.zeros(n, dtype=torch.long).scatter_reduce(0, col, pos + 1, "amax")
                out.append((lo.minimum(hi), hi))
            self._ranges = (self.n_items, out)
        return self._ranges[1]

    def items(self) -> list[tuple[tuple[int, ...], int]]:
        """All (SID, item) pairs, depth-first."""
        out: list[tuple[tuple[int, ...], int]] = []

        def walk(level: int, node: int, prefix: tuple[int, ...]) -> None:
            for c in np.flatnonzero(self._tables[level][node] >= 0):
                child = int(self._tables[level][node, c])
                if level == self.depth - 1:
                    out.append(((*prefix, int(c)), child))
                else:
                    walk(level + 1, child, (*prefix, int(c)))

        walk(0, 0, ())
        return out
