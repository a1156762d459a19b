"""Ranker metrics: AUC and GAUC."""

from __future__ import annotations

import numpy as np
import pytest

from models.rank.metrics import auc, gauc


def test_auc_and_gauc_match_pairwise_counts() -> None:
    rng = np.random.default_rng(0)
    y = rng.random((30, 8)) < 0.3
    s = np.round(rng.random((30, 8)), 1)  # plenty of ties
    pos, neg = s[y], s[~y]
    brute = ((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean()
    assert auc(y, s) == pytest.approx(brute)
    rows = [auc(y[i], s[i]) for i in range(30) if 0 < y[i].sum() < 8]
    g, n = gauc(y, s)
    assert n == len(rows) and g == pytest.approx(float(np.mean(rows)))
    assert auc(np.ones(3), np.arange(3)) != auc(np.ones(3), np.arange(3))  # NaN: one class
    assert auc([1, 0], [0.9, 0.1]) == 1.0 and auc([1, 0], [0.1, 0.9]) == 0.0
