"""Ranker data: split, labels, co-visitation negatives."""

from __future__ import annotations

import numpy as np
import pytest

from models.data.dataset import SeqDataset
from models.rank.data import (
    CLICK,
    ORDER,
    CoVisit,
    DataConfig,
    Examples,
    LabelRule,
    build_corpus,
    eval_negatives,
    histories,
    make_batch,
    split,
    train_negatives,
)
from models.rank.features import ItemFeatures
from models.rank.toy import toy_dataset
from tests.fixtures.rank_data import tiny


def test_leave_one_out_split_and_histories() -> None:
    corpus = build_corpus(tiny(), LabelRule.BRAND_REPEAT)
    train, valid, test = split(corpus)
    # user 1 (len 5): train targets at t=0..2, valid t=3, test t=4; user 2 (len 2): train t=0,
    # test t=1; user 3 (len 1): nothing
    assert corpus.items[train.pos].tolist() == [1, 2, 3, 2]
    assert corpus.items[valid.pos].tolist() == [4]
    assert corpus.items[test.pos].tolist() == [5, 1]
    hist, events = histories(corpus, test, max_hist=3)
    assert hist.tolist() == [[2, 3, 4], [0, 0, 2]]  # right-aligned, target excluded
    assert events.tolist() == [[CLICK] * 3, [0, 0, CLICK]]
    hist0, _ = histories(corpus, Examples(train.user[:1], train.pos[:1]), max_hist=3)
    assert hist0.tolist() == [[0, 0, 0]]  # first position: empty history


def test_label_rules() -> None:
    ds = tiny()
    brand = build_corpus(ds, LabelRule.BRAND_REPEAT)
    # user 1: A, B, A(repeat), Unknown (no brand), None -> only item 3 is a repeat-brand order
    assert brand.order[:5].tolist() == [0, 0, 1, 0, 0]
    rating = build_corpus(ds, LabelRule.RATING)
    assert rating.order[:5].tolist() == [1, 0, 1, 0, 1]
    assert rating.events[:2].tolist() == [ORDER, CLICK]
    assert LabelRule.auto(ds) is LabelRule.RATING
    with pytest.raises(ValueError, match="ratings"):
        build_corpus(SeqDataset("x", ds.sequences, ds.items), LabelRule.RATING)
    assert build_corpus(ds, LabelRule.ALL).order.min() == 1


def test_covisit_negatives_exclude_positive() -> None:
    ds = toy_dataset(n_users=80, n_items=40, seed=1)
    corpus = build_corpus(ds, LabelRule.RATING)
    train, valid, _ = split(corpus)
    cfg = DataConfig(n_hard=5, n_random=5, covisit_k=10, eval_hard=8, eval_random=12)
    cov = CoVisit(corpus, train, 40, cfg)
    assert cov.count.max() > 0 and (cov.neighbours[0] == 0).all()
    negs = train_negatives(corpus, train, cov, cfg, np.random.default_rng(0))
    assert negs.shape == (len(train.pos), 10)
    assert not (negs == corpus.items[train.pos][:, None]).any() and negs.min() >= 1
    ev1, ev2 = (eval_negatives(corpus, valid, cov, cfg, seed=3) for _ in range(2))
    np.testing.assert_array_equal(ev1, ev2)
    assert not (ev1 == corpus.items[valid.pos][:, None]).any()
    feats = ItemFeatures.from_dataset(ds)
    b = make_batch(corpus, valid, ev1, feats, max_hist=5)
    assert b.cand_feats.shape == (len(valid.pos), 21, 4) and b.click[:, 0].all()
    assert b.click[:, 1:].sum() == 0 and b.order[:, 1:].sum() == 0


def test_covisit_weights_and_no_leakage() -> None:
    corpus = build_corpus(tiny(), LabelRule.ALL)
    train, _, _ = split(corpus)  # training sequences: user 1 [1, 2, 3], user 2 [2]
    cov = CoVisit(corpus, train, 5, DataConfig(covisit_window=3, covisit_k=4, n_popular=2))
    assert cov.neighbours[1].tolist() == [2, 3, 0, 0]  # distance 1 (weight 1) before 2 (1/2)
    assert cov.neighbours[3].tolist() == [2, 1, 0, 0]
    assert cov.count[4] == 0 and cov.count[5] == 0  # valid / test items never co-visited
    assert cov.popular[0] == 2  # item 2 occurs twice in training positions
    assert cov.top(np.array([1, 0]), 3).tolist() == [[2, 3, 1], [2, 1, 0]]  # then popularity
