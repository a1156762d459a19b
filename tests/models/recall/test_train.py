from __future__ import annotations

import pytest

from models.recall.data import leave_one_out
from models.recall.model import GenConfig
from models.recall.train import RecallTrainConfig, fit
from tests.fixtures.recall_models import synthetic_dataset, tiny_recaller


@pytest.mark.slow
@pytest.mark.parametrize("item_loss", [0.0, 1.0])
def test_generative_model_learns_a_predictable_walk(item_loss: float) -> None:
    ds = synthetic_dataset(n_users=80)
    rec = tiny_recaller(item_loss=item_loss)
    cfg = RecallTrainConfig(gen=GenConfig(), epochs=150, batch_size=16, lr=1e-2, warmup_steps=10,
                            eval_every=25, eval_users=0, patience=10, beam=8, max_hist=8)
    out = fit(rec, ds, cfg, progress=False)
    assert out["best_valid_recall@10"] > 0.8
    test = leave_one_out(ds, "test", 8)
    res = rec.recall(test.histories, k=1, beam=8)
    assert (res.items[:, 0] == test.targets).mean() > 0.6
