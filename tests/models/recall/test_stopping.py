"""The stopping rule: best weights kept, stop after ``patience`` evaluations without gain."""

from __future__ import annotations

import torch
from torch import nn

from models.recall.stopping import BestOnValidation


def test_keeps_the_best_weights_and_stops_after_patience() -> None:
    model = nn.Linear(2, 1)
    rule = BestOnValidation(patience=2)
    with torch.no_grad():
        model.weight.fill_(1.0)
    assert not rule.update(5, 0.3, model)
    with torch.no_grad():
        model.weight.fill_(2.0)
    assert not rule.update(10, 0.2, model)  # worse: one strike
    assert not rule.update(15, 0.4, model)  # better: strikes reset, these weights kept
    with torch.no_grad():
        model.weight.fill_(3.0)
    assert not rule.update(20, 0.4, model)  # a tie is no gain
    assert rule.update(25, 0.1, model)
    rule.restore(model)
    assert rule.epoch == 15 and rule.score == 0.4 and float(model.weight[0, 0].detach()) == 2.0
