"""Training a tiny ranker on the toy set lowers the loss and beats random AUC."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.rank.data import DataConfig, Examples, LabelRule, make_batch, train_negatives
from models.rank.model import Ranker
from models.rank.toy import toy_dataset
from models.rank.train import (
    TrainConfig,
    evaluate,
    id_dropout,
    model_config,
    prepare_data,
    to_torch,
    train,
    train_step,
)

torch.set_num_threads(1)
DATA = DataConfig(max_hist=8, n_hard=3, n_random=3, covisit_k=10, eval_hard=5, eval_random=15)


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return prepare_data(toy_dataset(n_users=300, n_items=60, seed=0), DATA)


@pytest.mark.slow
def test_training_lowers_loss_and_beats_random(data) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = Ranker(model_config(data.features, DATA.max_hist, d=16, hidden=16))
    before = evaluate(model, data, data.test)
    result = train(model, data, TrainConfig(epochs=4, batch_size=32, lr=1e-2, eval_users=0))
    assert result.losses[-1] < 0.9 * result.losses[0]
    test = result.metrics["test"]
    # planted signal: ~0.75 is the ceiling (same-category negatives are indistinguishable)
    assert test["auc_ctr"] > 0.68 and test["gauc_ctr"] > 0.68, test
    assert test["auc_ctr"] > before["auc_ctr"] + 0.1
    assert test["auc_ctcvr"] > 0.75  # order = rating >= 4 = the favourite category
    assert test["users"] == len(data.test.pos) and math.isfinite(test["auc_cvr_clicked"])


def test_single_step_on_fixed_batch_reduces_loss(data) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(1)
    model = Ranker(model_config(data.features, DATA.max_hist, d=16, hidden=16))
    rng = np.random.default_rng(0)
    ex = Examples(data.train.user[:256], data.train.pos[:256])
    b = to_torch(make_batch(data.corpus, ex, train_negatives(data.corpus, ex, data.covisit,
                                                            DATA, rng), data.features, 8))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = [train_step(model, opt, b, 1.0) for _ in range(15)]
    assert losses[-1] < 0.8 * losses[0]


def test_id_dropout_only_touches_real_ids(data) -> None:  # type: ignore[no-untyped-def]
    ex = Examples(data.valid.user[:50], data.valid.pos[:50])
    negs = train_negatives(data.corpus, ex, data.covisit, DATA, np.random.default_rng(0))
    b = make_batch(data.corpus, ex, negs, data.features, 8)
    out = id_dropout(b, data.features.unknown_id, 0.5, np.random.default_rng(0))
    pad = b.hist_feats[..., 0] == 0
    assert (out.hist_feats[..., 0][pad] == 0).all()
    changed = out.cand_feats[..., 0] != b.cand_feats[..., 0]
    assert changed.any() and (out.cand_feats[..., 0][changed] == data.features.unknown_id).all()
    assert (out.cand_feats[..., 1:] == b.cand_feats[..., 1:]).all()


def test_label_rule_is_recorded(data) -> None:  # type: ignore[no-untyped-def]
    assert data.rule is LabelRule.RATING  # the toy set has ratings
