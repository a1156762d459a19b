"""The synthetic catalogues of the scale benchmark: unique SIDs, all of them in the trie."""

from __future__ import annotations

from models.recall.sidrec_scale import synthetic_catalogue


def test_every_synthetic_item_gets_a_unique_sid_in_the_trie() -> None:
    sids, trie = synthetic_catalogue(5000, (16, 16, 8, 64), seed=0)
    assert trie.n_items == 5000
    assert len({tuple(r) for r in sids[1:].tolist()}) == 5000
    assert all(trie.lookup(tuple(sids[i])) == i for i in (1, 77, 5000))
