"""The multi-objective blend that orders the ranked list.

    score = w_click * pCTR + w_order * pCTCVR + w_value * pCTCVR * price

pCTCVR = pCTR * pCVR is the probability that a shown item is clicked *and* ordered, so the
order term is an expected-order count and the value term an expected revenue. The value term
only counts where the price is known (unknown price: the term is 0 for that item).

Defaults (``SIDSTREAM_W_CLICK=1``, ``SIDSTREAM_W_ORDER=2``, ``SIDSTREAM_W_VALUE=0``): an order
is worth twice a click -- pCTCVR is at most pCTR, so with w_order = 2 an item the user is likely
to buy beats one they would only click, while pCTR still separates the long tail of items
with low conversion estimates; the value term is off because neither bundled data set has
prices (turn it on with a weight on the scale of 1 / typical price, e.g. 0.02 for prices ~50).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

ENV = {"w_click": "SIDSTREAM_W_CLICK", "w_order": "SIDSTREAM_W_ORDER",
       "w_value": "SIDSTREAM_W_VALUE"}


@dataclass(frozen=True)
class BlendWeights:
    w_click: float = 1.0
    w_order: float = 2.0
    w_value: float = 0.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BlendWeights:
        """Weights from ``SIDSTREAM_W_CLICK`` / ``_ORDER`` / ``_VALUE`` (unset, empty: default)."""
        env = os.environ if environ is None else environ
        values: dict[str, float] = {}
        for name, var in ENV.items():
            raw = env.get(var, "").strip()
            if raw:
                try:
                    values[name] = float(raw)
                except ValueError as exc:
                    raise ValueError(f"{var}={raw!r} is not a number") from exc
                if not np.isfinite(values[name]) or values[name] < 0:
                    raise ValueError(f"{var}={raw!r}: weights are finite and >= 0")
        return cls(**values)


def blend(pctr: np.ndarray, pctcvr: np.ndarray, price: np.ndarray | None = None,
          weights: BlendWeights | None = None) -> np.ndarray:
    """Final ranking score, same shape as ``pctr``; ``price`` NaN (or None) where unknown."""
    w = weights or BlendWeights()
    score = w.w_click * np.asarray(pctr, np.float32) + w.w_order * np.asarray(pctcvr, np.float32)
    if price is not None and w.w_value:
        value = np.nan_to_num(np.asarray(price, np.float32), nan=0.0) * pctcvr
        score = score + w.w_value * value
    return score.astype(np.float32)
