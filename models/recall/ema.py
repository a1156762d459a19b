"""An exponential moving average of a model's weights, for evaluation and serving.

Small sequential recommenders trained with heavy dropout peak early and then drift: the weights
of one step are a noisy sample around a good region. Averaging them over the last ~``horizon``
optimizer steps evaluates (and keeps) the centre of that region instead. The trainer updates
the average after every step and scores validation with it swapped in; the stopping rule then
keeps the averaged weights of the best evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class WeightAverage:
    def __init__(self, model: nn.Module, horizon_steps: float) -> None:
        if horizon_steps < 1:
            raise ValueError(f"the average spans at least one step, got {horizon_steps}")
        self.decay = 1.0 - 1.0 / horizon_steps
        self.params = {n: p.detach().clone() for n, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights in (after an optimizer step)."""
        for name, p in model.named_parameters():
            self.params[name].lerp_(p.detach(), 1.0 - self.decay)

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[None]:
        """The averaged weights in ``model`` for the block, its own weights back afterwards."""
        own = {n: p.detach().clone() for n, p in model.named_parameters()}
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(self.params[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in model.named_parameters():
                    p.copy_(own[name])
