from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.sid.trie import SidTrie

VOCAB = (4, 3, 5)
sid_st = st.tuples(*(st.integers(0, v - 1) for v in VOCAB))


@settings(max_examples=60, deadline=None)
@given(st.lists(sid_st, unique=True, max_size=40), sid_st)
def test_trie_admits_exactly_the_inserted_sids(sids: list[tuple[int, ...]],
                                               probe: tuple[int, ...]) -> None:
    trie = SidTrie.from_sids(VOCAB, ((s, 100 + i) for i, s in enumerate(sids)))
    assert trie.n_items == len(sids)
    for i, s in enumerate(sids):
        assert trie.lookup(s) == 100 + i
    assert (trie.lookup(probe) >= 0) == (probe in sids)
    assert sorted(trie.items()) == sorted((s, 100 + i) for i, s in enumerate(sids))


@settings(max_examples=60, deadline=None)
@given(st.lists(sid_st, unique=True, min_size=1, max_size=40))
def test_masks_walk_only_valid_prefixes(sids: list[tuple[int, ...]]) -> None:
    """Following allowed() masks level by level enumerates exactly the inserted SIDs."""
    trie = SidTrie.from_sids(VOCAB, ((s, i) for i, s in enumerate(sids)))
    frontier: list[tuple[tuple[int, ...], int]] = [((), 0)]
    for level in range(trie.depth):
        nxt = []
        for prefix, node in frontier:
            mask = trie.allowed(level, np.array([node]))[0]
            expected = {s[level] for s in sids if s[:level] == prefix}
            assert set(np.flatnonzero(mask).tolist()) == expected
            for c in np.flatnonzero(mask):
                nxt.append(((*prefix, int(c)), int(trie.table(level)[node, c])))
        frontier = nxt
    assert sorted(p for p, _ in frontier) == sorted(sids)


def test_insert_in_place_grows_and_rejects_bad_sids() -> None:
    trie = SidTrie((2, 50, 3))
    for i in range(100):  # forces the level tables to grow several times
        trie.insert((i % 2, i // 2, i % 3), i)
    assert trie.n_items == 100 and trie.lookup((1, 49, 0)) == 99
    with pytest.raises(ValueError):
        trie.insert((0, 0), 5)  # wrong length
    with pytest.raises(ValueError):
        trie.insert((0, 50, 0), 5)  # code out of range
    with pytest.raises(ValueError):
        trie.insert((1, 49, 0), 7)  # taken by item 99
    trie.insert((1, 49, 0), 99)  # re-inserting the same pair is a no-op
    assert trie.n_items == 100
    assert trie.lookup((1, 49, 2)) == -1 and trie.lookup((5, 0, 0)) == -1


def test_paths_follow_the_tables_and_refresh_after_insert() -> None:
    trie = SidTrie.from_sids((4, 4, 3), [((0, 1, 0), 10), ((0, 1, 1), 11), ((2, 0, 0), 12)])
    items, nodes = trie.paths()
    assert sorted(items.tolist()) == [10, 11, 12] and nodes.shape == (3, 2)
    for item, path in zip(items.tolist(), nodes.tolist(), strict=True):
        sid = {10: (0, 1, 0), 11: (0, 1, 1), 12: (2, 0, 0)}[item]
        assert int(trie.table(0)[0, sid[0]]) == path[0]
        assert int(trie.table(1)[path[0], sid[1]]) == path[1]
    trie.insert((3, 3, 0), 13)
    assert 13 in trie.paths()[0].tolist()


@settings(max_examples=40, deadline=None)
@given(st.lists(sid_st, unique=True, min_size=1, max_size=40))
def test_every_subtree_is_one_run_of_the_paths(sids: list[tuple[int, ...]]) -> None:
    trie = SidTrie.from_sids(VOCAB, [(s, i) for i, s in enumerate(sids)])
    _, nodes = trie.paths()
    for lv, (lo, hi) in enumerate(trie.ranges()):
        assert len(lo) == len(hi) == trie.n_nodes(lv + 1)
        for node in range(trie.n_nodes(lv + 1)):
            under = (nodes[:, lv] == node).nonzero().squeeze(1).tolist()
            assert list(range(int(lo[node]), int(hi[node]))) == under


def test_an_item_id_beyond_the_int32_tables_is_refused_not_wrapped() -> None:
    """The tables hold int32: item 2**31 would be stored as a negative id (no item)."""
    trie = SidTrie(VOCAB)
    trie.insert((0, 0, 0), 2**31 - 1)
    assert trie.lookup((0, 0, 0)) == 2**31 - 1
    with pytest.raises(ValueError, match="item ids"):
        trie.insert((0, 0, 1), 2**31)
    assert trie.lookup((0, 0, 1)) == -1 and trie.n_items == 1
