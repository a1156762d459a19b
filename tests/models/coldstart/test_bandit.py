"""Explore-exploit scores of the SKUs of one product."""

from __future__ import annotations

import numpy as np
import pytest

from models.coldstart.bandit import ItemBandit


def test_without_statistics_every_sku_gets_the_same_score() -> None:
    b = ItemBandit()
    s = b.score([1, 2, 3, 4])
    assert np.allclose(s, s[0]) and 0.25 < s[0] < 1.0  # prior mean 1/K plus the bonus


def test_counts_clicks_and_orders_and_ignores_views() -> None:
    b = ItemBandit(order_weight=2.0)
    for etype in ("view", "click", "cart", "order"):
        b.update(7, etype)
    assert b.clicks[7] == 2 and b.orders[7] == 1 and len(b) == 1
    assert b.demand([7, 8]).tolist() == [4.0, 0.0]


def test_ucb_exploits_demand_and_explores_where_data_is_thin() -> None:
    b = ItemBandit()
    for _ in range(200):
        b.update(1, "click")
    for _ in range(50):
        b.update(2, "order")
    b.update(3, "click")
    s = b.score([1, 2, 3, 4])
    assert s[0] > s[1] > s[2] > s[3] >= 0
    assert s[3] < 0.01  # no demand in a product with plenty of data: below a 1% threshold
    thin = ItemBandit()
    thin.update(1, "click")
    t = thin.score([1, 2, 3, 4])
    assert t[1] > 0.2  # one click tells little: the other SKUs stay well above epsilon
    # the bound is above the mean share, and shrinks as data grows
    mean = (1 + b.demand([1]).item()) / (3 + 1 + b.demand([1, 2, 3, 4]).sum())
    assert s[0] > mean


def test_thompson_draws_follow_the_posterior_and_are_seeded() -> None:
    b = ItemBandit()
    for _ in range(100):
        b.update(1, "order")
    draws = np.array([b.score([1, 2], "thompson", np.random.default_rng(i)) for i in range(200)])
    assert (draws[:, 0] > draws[:, 1]).mean() > 0.95
    again = b.score([1, 2], "thompson", np.random.default_rng(0))
    assert (again == draws[0]).all()
    with pytest.raises(ValueError):
        b.score([1], "greedy")
    assert b.score([]).shape == (0,)
