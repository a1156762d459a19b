"""The weight average the trainers evaluate and keep."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.recall.ema import WeightAverage


def test_the_average_follows_the_weights_with_its_decay() -> None:
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    avg = WeightAverage(model, horizon_steps=4)  # decay 0.75
    want = torch.zeros(1, 2)
    for step in range(1, 4):
        with torch.no_grad():
            model.weight.fill_(float(step))
        avg.update(model)
        want = 0.75 * want + 0.25 * step
    torch.testing.assert_close(avg.params["weight"], want)


def test_applied_weights_are_given_back_after_the_block() -> None:
    model = nn.Linear(2, 1)
    avg = WeightAverage(model, horizon_steps=10)
    with torch.no_grad():
        model.weight.add_(1.0)
    own = model.weight.detach().clone()
    with avg.applied(model):
        torch.testing.assert_close(model.weight.detach(), avg.params["weight"])
    torch.testing.assert_close(model.weight.detach(), own)


def test_a_horizon_under_one_step_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one step"):
        WeightAverage(nn.Linear(1, 1), horizon_steps=0.5)
