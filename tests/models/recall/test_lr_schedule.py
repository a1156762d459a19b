"""The learning-rate schedule: warm-up, cosine decay to zero at the budget, and both item-level
trainers step it once per optimizer step."""

from __future__ import annotations

import math

import pytest
import torch

from models.recall.lr_schedule import lr_factor, make_schedule
from models.recall.sasrec_train import SASRecTrainConfig, fit_sasrec
from models.recall.sidrec_train import SIDRecTrainConfig, fit_sidrec
from tests.fixtures.recall_models import synthetic_dataset, tiny_sidrec


def test_the_rate_warms_up_linearly_then_decays_to_zero_at_the_budget() -> None:
    assert [lr_factor(s, 100, 4) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(4, 100, 4) == 1.0
    assert lr_factor(52, 100, 4) == pytest.approx(0.5)
    assert lr_factor(100, 100, 4) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(150, 100, 4) == pytest.approx(0.0, abs=1e-12)  # never back up
    assert all(lr_factor(s, 100, 0) >= lr_factor(s + 1, 100, 0) for s in range(100))
    assert lr_factor(0, 100, 0) == 1.0 and math.isclose(lr_factor(25, 100, 0),
                                                        0.5 + 0.5 * math.cos(math.pi / 4))


def test_a_constant_rate_has_no_scheduler_and_an_unknown_one_is_refused() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    assert make_schedule(opt, "constant", 10) is None
    with pytest.raises(ValueError, match="linear"):
        make_schedule(opt, "linear", 10)


def test_sidrec_training_steps_the_cosine_schedule_down_to_zero() -> None:
    ds = synthetic_dataset(n_users=40)
    cfg = SIDRecTrainConfig(epochs=2, eval_every=1, patience=5, max_hist=8, lr=1e-2,
                            batch_size=16, beam=4, weights=(1.0,), lr_schedule="cosine")
    lrs = [h["lr"] for h in fit_sidrec(tiny_sidrec(dropout=0.1), ds, cfg, set(),
                                       progress=False)["history"]]
    assert lrs[0] == pytest.approx(5e-3, rel=0.1) and lrs[1] == pytest.approx(0.0, abs=1e-9)


def test_sasrec_training_steps_the_cosine_schedule_down_to_zero() -> None:
    cfg = SASRecTrainConfig(model={"d_model": 16}, epochs=2, eval_every=1, patience=5,
                            max_hist=8, lr=1e-2, batch_size=16, lr_schedule="cosine")
    _, info = fit_sasrec(synthetic_dataset(n_users=40), cfg, progress=False)
    lrs = [h["lr"] for h in info["history"]]
    assert lrs[0] == pytest.approx(5e-3, rel=0.1) and lrs[1] == pytest.approx(0.0, abs=1e-9)
