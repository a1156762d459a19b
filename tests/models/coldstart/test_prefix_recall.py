"""Coarse-prefix search and the bandit mapping of prefixes to SKUs (cold-start recall)."""

from __future__ import annotations

import numpy as np
import pytest

from models.coldstart.bandit import ItemBandit
from models.coldstart.prefix_recall import ColdStartConfig, ColdStartRecaller, prefix_search
from tests.fixtures.recall_models import N_ITEMS, tiny_recaller


def test_prefix_search_is_exact_at_one_level_and_valid_at_two() -> None:
    rec = tiny_recaller()
    enc = rec.encode(rec.prefixes([[1, 2], [], [5]]))
    one = prefix_search(rec.model, rec.trie, enc, levels=1, n=3)
    logp = rec.model.level_logits(enc.last, 0).log_softmax(-1).detach()
    root = rec.trie.table(0)[0]
    best = logp.masked_fill(root < 0, float("-inf")).topk(3, dim=-1)
    assert np.allclose(one.logp, best.values.numpy(), atol=1e-6)
    assert (one.nodes == root[best.indices].numpy()).all()
    two = prefix_search(rec.model, rec.trie, enc, levels=2, n=4)
    assert (np.diff(two.logp, axis=1) <= 1e-6).all()
    valid = set(rec.trie.paths()[1][:, 1].tolist())
    assert {int(n) for n in two.nodes[two.nodes >= 0]} <= valid
    with pytest.raises(ValueError):
        prefix_search(rec.model, rec.trie, enc, levels=rec.trie.depth, n=2)


def test_bandit_mapping_keeps_skus_under_the_prefixes_above_epsilon() -> None:
    rec = tiny_recaller()
    cold = ColdStartRecaller(rec, ColdStartConfig(levels=1, prefixes=2, epsilon=0.05))
    bandit = ItemBandit()
    res, pre = cold.recall([[], [3]], [np.zeros(0)] * 2, bandit, k=N_ITEMS, exclude=[set(), {1}])
    for u in range(2):
        got = res.items[u][res.items[u] > 0]
        under = np.concatenate([cold.index().under(int(n)) for n in pre.nodes[u] if n >= 0])
        assert set(got.tolist()) == set(under.tolist()) - ({1} if u else set())
        assert (np.diff(res.scores[u][: len(got)]) <= 0).all()
    for _ in range(500):  # one SKU takes all the demand: the others fall under epsilon
        bandit.update(int(res.items[0][0]), "order")
    res2, _ = cold.recall([[]], [np.zeros(0)], bandit, k=N_ITEMS)
    assert res2.items[0][0] == res.items[0][0] and len(res2.items[0][res2.items[0] > 0]) < \
        len(res.items[0][res.items[0] > 0])
