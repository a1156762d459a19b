"""The item-level trainers' stopping rule: epochs decide the model, never the wall clock.

Every ``eval_every`` epochs the trainer scores the validation split; the best weights so far are
kept, and training stops after ``patience`` evaluations without a better Recall@10 (or at the
epoch cap). The same rule runs the SASRec baseline and SIDRec, so their budgets compare.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from torch import nn


@dataclass
class BestOnValidation:
    patience: int
    score: float = -1.0  # best validation Recall@10 so far
    epoch: int = 0  # its epoch
    bad: int = 0  # evaluations since it
    state: dict[str, Any] | None = field(default=None, repr=False)

    def update(self, epoch: int, score: float, model: nn.Module) -> bool:
        """Record an evaluation; True when training should stop."""
        if score > self.score:
            self.score, self.epoch, self.bad = score, epoch, 0
            self.state = copy.deepcopy(model.state_dict())
            return False
        self.bad += 1
        return self.bad >= self.patience

    def restore(self, model: nn.Module) -> None:
        """Put the best weights back (no-op before any evaluation)."""
        if self.state is not None:
            model.load_state_dict(self.state)
