"""Ranker features: the item feature table, SID tables, the user context and history fit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.data.dataset import ItemMeta
from models.rank.features import (
    EVENT_IDS,
    N_CONTEXT,
    ItemFeatures,
    build_inputs,
    context_features,
    fit_history,
    load_item_sid,
)
from tests.fixtures.rank_data import tiny


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
