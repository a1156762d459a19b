"""Explore-exploit scores of the SKUs of one product, from click/order statistics.

The event contract has no impressions, so the arms are scored on *demand*: each SKU's clicks
(click and cart events) and orders, ``demand = clicks + order_weight x orders`` (an order is
worth two clicks, as in the ranking blend). Within one product (the SKUs under a generated SID
prefix, ``models/coldstart/prefix_recall.py``) each SKU's share of the product's demand has a Beta
posterior, ``Beta(1 + d_i, (K - 1) + D - d_i)`` for ``K`` SKUs with demand ``d_i`` summing to ``D``:
with no statistics every SKU gets the uniform share 1/K. Two scores:

- ``ucb``: posterior mean + ``z`` posterior standard deviations (an upper confidence bound on the
  share; deterministic, so a user's list is stable between events);
- ``thompson``: one draw from each SKU's posterior.

SKUs of a product with little demand data share a wide posterior and are all explored; in a
product with plenty of data, a SKU almost nobody clicks or orders falls below the threshold
epsilon and is dropped. Views update nothing. Nothing here imports torch: the stream workers
keep one of these per worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

KINDS = ("ucb", "thompson")
CLICK_TYPES = frozenset({"click", "cart"})


@dataclass
class ItemBandit:
    order_weight: float = 2.0
    z: float = 1.0  # standard deviations of the UCB bonus
    clicks: dict[int, float] = field(default_factory=dict)
    orders: dict[int, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.clicks.keys() | self.orders.keys())

    def update(self, item: int, event_type: str, weight: float = 1.0) -> None:
        """One event on ``item`` (model item id)."""
        if event_type in CLICK_TYPES:
            self.clicks[item] = self.clicks.get(item, 0.0) + weight
        elif event_type == "order":
            self.orders[item] = self.orders.get(item, 0.0) + weight

    def demand(self, items: Sequence[int] | np.ndarray) -> np.ndarray:
        return np.array([self.clicks.get(int(i), 0.0) + self.order_weight
                         * self.orders.get(int(i), 0.0) for i in items], np.float64)

    def score(self, items: Sequence[int] | np.ndarray, kind: str = "ucb",
              rng: np.random.Generator | None = None) -> np.ndarray:
        """Explore-exploit score [K] in [0, 1] of each SKU of one product (``items``)."""
        if kind not in KINDS:
            raise ValueError(f"bandit score must be one of {KINDS}, got {kind!r}")
        if len(items) == 0:
            return np.zeros(0, np.float64)
        d = self.demand(items)
        a, b = 1.0 + d, (len(d) - 1.0) + d.sum() - d
        if kind == "thompson":
            return (rng or np.random.default_rng()).beta(a, np.maximum(b, 1e-9))
        mean = a / (a + b)
        std = np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
        return np.minimum(mean + self.z * std, 1.0)
