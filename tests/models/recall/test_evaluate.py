from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from models.recall.data import leave_one_out
from models.recall.evaluate import evaluate, popularity_counts, popularity_ranking, rank_metrics
from tests.fixtures.recall_models import synthetic_dataset


def test_metrics_match_hand_computed_values() -> None:
    ranked = np.array([[7, 1, 2, 3, 4, 5, 6, 8, 9, 10],   # hit at rank 0
                       [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],   # hit at rank 6
                       [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]])  # miss
    targets = np.array([7, 7, 11])
    m = rank_metrics(ranked, targets)
    assert m["recall@5"] == pytest.approx(1 / 3)
    assert m["recall@10"] == pytest.approx(2 / 3)
    assert m["ndcg@5"] == pytest.approx(1 / 3)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(8)) / 3)


def test_leave_one_out_follows_the_protocol() -> None:
    ds = synthetic_dataset()
    ds.sequences[1] = list(range(1, 31))  # 30 items
    test, valid = leave_one_out(ds, "test"), leave_one_out(ds, "valid")
    u = int(np.flatnonzero(test.users == 1)[0])
    assert test.targets[u] == 30 and test.histories[u] == list(range(10, 30))
    assert valid.targets[u] == 29 and valid.histories[u] == list(range(9, 29))
    assert test.seen[u] == set(range(1, 30))
    assert len(test.targets) == len(ds.sequences)


def test_popularity_baseline_excludes_history() -> None:
    ds = synthetic_dataset()
    ds.sequences = {1: [1, 2, 3], 2: [1, 2, 4], 3: [1, 5, 6]}
    counts = popularity_counts(ds, "test")
    assert counts == Counter({1: 3, 2: 2, 5: 1})
    data = leave_one_out(ds, "test")
    plain = popularity_ranking(counts, data, 2, exclude_seen=False)
    excl = popularity_ranking(counts, data, 2, exclude_seen=True)
    assert plain.tolist() == [[1, 2]] * 3
    assert excl.tolist() == [[5, -1], [5, -1], [2, -1]]
    res = evaluate(None, ds, data, "test")
    assert res["popularity/exclude_history"]["recall@5"] == pytest.approx(0.0)


def test_bias_metrics_hand_computed() -> None:
    from models.recall.evaluate import bias_metrics, tail_items

    counts = Counter({1: 50, 2: 30, 3: 5, 4: 1})  # 10 items; head = top 2 (items 1, 2)
    tail = tail_items(counts, 10)
    assert tail == set(range(3, 11))
    ranked = np.array([[1, 3, -1], [1, 2, 4]])
    m = bias_metrics(ranked, counts, tail, 10, k=3)
    assert m["coverage@3"] == 0.4  # items 1, 2, 3, 4 of 10
    assert m["tail_share@3"] == 2 / 5  # slots 3 and 4 of five filled slots
    assert m["mean_pop@3"] == (50 + 5 + 50 + 30 + 1) / 5
