"""The learning rate over a fixed epoch budget: constant, or warm-up then cosine decay.

With a constant rate the small sequential models here peak on validation about halfway through
their budget and then drift (dropout noise at full step size). A cosine decay to zero over the
whole budget spends its last epochs at small steps and settles instead, which makes the fixed
epoch count, not the stopping rule, the recipe. The schedule is stepped once per optimizer step.
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

SCHEDULES = ("constant", "cosine")


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Multiplier of the base rate after ``step`` optimizer steps: linear warm-up over
    ``warmup_steps``, then half a cosine from 1 down to 0 at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    done = min(1.0, (step - warmup_steps) / span)
    return 0.5 * (1.0 + math.cos(math.pi * done))


def make_schedule(opt: torch.optim.Optimizer, kind: str, total_steps: int,
                  warmup_steps: int = 0) -> LambdaLR | None:
    """The scheduler of ``kind`` (None for a constant rate)."""
    if kind not in SCHEDULES:
        raise ValueError(f"learning-rate schedule {kind!r}: expected one of {SCHEDULES}")
    if kind == "constant":
        return None
    return LambdaLR(opt, lambda step: lr_factor(step, total_steps, warmup_steps))
