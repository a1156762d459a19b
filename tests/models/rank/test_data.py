"""Ranker data: split, labels, co-visitation negatives, feature table, context, metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.data.dataset import ItemMeta, SeqDataset
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
from models.rank.features import (
    EVENT_IDS,
    N_CONTEXT,
    ItemFeatures,
    build_inputs,
    context_features,
    fit_history,
    load_item_sid,
)
from models.rank.metrics import auc, gauc
from models.rank.toy import toy_dataset


def tiny() -> SeqDataset:
    items = {1: ItemMeta(1, brand="A", categories=(("x", "y"),), price=10.0),
             2: ItemMeta(2, brand="B", categories=(("x",),), price=100.0),
             3: ItemMeta(3, brand="A"), 4: ItemMeta(4, brand="Unknown"), 5: ItemMeta(5)}
    return SeqDataset("tiny", {1: [1, 2, 3, 4, 5], 2: [2, 1], 3: [4]}, items,
                      ratings={1: [5, 1, 4, 2, 5], 2: [3, 4], 3: [1]})


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


def test_item_features_upsert_unknown_and_round_trip(tmp_path: object) -> None:
    feats = ItemFeatures.from_dataset(tiny(), item_sid=np.array([[-1, -1], [0, 3], [2, 1],
                                                                 [1, 1], [0, 0], [-1, 2]]))
    assert feats.n_trained_items == 5 and feats.sid_vocab == 5
    row = feats.gather(np.array([1]))[0]
    assert row[0] == 1 and row[1] == feats.categories["x > y"] and row[2] == feats.brands["A"]
    assert row[4:].tolist() == [1, 4]  # SID codes shifted by one, 0 = unknown
    assert feats.gather(np.array([4]))[0, 2] == 0  # "Unknown" brand -> unknown id
    assert (feats.gather(np.array([0, -3])) == 0).all()  # padding
    beyond = feats.gather(np.array([10_000]))[0]
    assert beyond[0] == feats.unknown_id and (beyond[1:] == 0).all()
    feats.upsert(40, ItemMeta(40, brand="B", categories=(("x",),), price=55.0), np.array([1, 1]))
    new = feats.gather(np.array([40]))[0]
    assert new[0] == feats.unknown_id and new[2] == feats.brands["B"] and new[3] > 0
    assert new[4:].tolist() == [2, 2]
    assert feats.prices(np.array([40, 3, 0])).tolist()[0] == 55.0
    assert np.isnan(feats.prices(np.array([3, 0, 99_999]))).all()
    from pathlib import Path

    feats.save(Path(str(tmp_path)))
    again = ItemFeatures.load(Path(str(tmp_path)))
    np.testing.assert_array_equal(again.gather(np.arange(45)), feats.gather(np.arange(45)))
    assert again.brands == feats.brands and again.n_trained_items == 5


def test_load_item_sid(tmp_path: object) -> None:
    from pathlib import Path

    d = Path(str(tmp_path))
    np.save(d / "item_sid.npy", np.zeros((6, 4), np.int32))
    assert load_item_sid(d, 5).shape == (6, 4)
    np.save(d / "bad.npy", np.zeros(6))
    with pytest.raises(ValueError):
        load_item_sid(d / "bad.npy", 5)
    with pytest.raises(FileNotFoundError):
        load_item_sid(d / "missing.npy", 5)
    tok = d / "tokenizer" / "v1"  # the tokenizer artifact layout: root/LATEST -> v1/sids.npz
    tok.mkdir(parents=True)
    (d / "tokenizer" / "LATEST").write_text("v1\n")
    np.savez(tok / "sids.npz", items=np.array([2, 4]), sids=np.array([[1, 2, 3, 0], [4, 5, 6, 1]]),
             meta=np.array([3, 256, 64, 0]))
    sid = load_item_sid(d / "tokenizer", 5)
    assert sid.shape == (6, 4) and sid[2].tolist() == [1, 2, 3, 0] and (sid[3] == -1).all()


def test_context_features_and_history_fit() -> None:
    ev = np.array([[0, 0, EVENT_IDS["click"], EVENT_IDS["order"]], [0, 0, 0, 0]])
    ctx = context_features(ev, np.array([3600.0, np.nan]))
    assert ctx.shape == (2, N_CONTEXT)
    assert ctx[0, EVENT_IDS["click"] - 1] == 0.5 and ctx[0, EVENT_IDS["order"] - 1] == 0.5
    assert ctx[0, 4] == pytest.approx(math.log1p(2) / math.log1p(4))
    assert ctx[0, 5] == 1 and 0 < ctx[0, 6] < 1
    assert (ctx[1] == 0).all()  # empty history: no mix, no recency
    assert fit_history(np.array([[1, 2, 3]]), 5).tolist() == [[0, 0, 1, 2, 3]]
    assert fit_history(np.array([[1, 2, 3]]), 2).tolist() == [[2, 3]]
    feats = ItemFeatures.from_dataset(tiny())
    inp = build_inputs(feats, np.array([[1, 2, 3]]), np.array([[2, 2, 4]]), None,
                       np.array([[4, 5, 0]]), n_hist=4)
    assert inp.hist_feats.shape == (1, 4, 4) and inp.hist_events.tolist() == [[0, 2, 2, 4]]
    assert inp.cand_feats.shape == (1, 3, 4) and (inp.cand_feats[0, 2] == 0).all()


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
