"""The cold-start channel: profile-only users get items, the bandit learns from events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streams.channels.coldstart import COLDSTART
from tests.fixtures.profile_pipelines import event, pipeline, prof


def test_profile_only_user_gets_cold_start_items(profile_models: Path) -> None:
    pipe = pipeline(profile_models, quota_covisit=0, quota_popular=0)
    assert pipe.models.recaller is not None and pipe.models.recaller.cfg.n_profile
    table: dict[str, Any] = {}
    out = pipe.process([prof({"user_id": 41, "occupation": "shampoo fan", "age": 30}, b"41")],
                       table.get)
    items = out.lists[0].items
    assert items and {c.source for c in items} == {COLDSTART}
    assert all(isinstance(c.item_id, int) and 1 <= c.item_id <= 40 for c in items)
    table.update({k: v for k, (_, v) in out.states.items()})
    # a few events: still cold (fewer than coldstart_max_events); events are excluded
    out = pipe.process([event(41, 3), event(41, 4, n=1)], table.get)
    got = out.lists[0].items
    assert COLDSTART in {c.source for c in got} and not {3, 4} & {c.item_id for c in got}
    table.update({k: v for k, (_, v) in out.states.items()})
    out = pipe.process([event(41, 5, n=2)], table.get)  # 3 events: warm now
    assert COLDSTART not in {c.source for c in out.lists[0].items}
    off = pipeline(profile_models, quota_covisit=0, quota_popular=0, quota_coldstart=0)
    out = off.process([prof({"user_id": 42, "age": 30}, b"42")], {}.get)
    assert not out.lists[0].items  # channel off, nothing else to give


def test_bandit_learns_from_applied_events(profile_models: Path) -> None:
    pipe = pipeline(profile_models)
    pipe.process([event("u", 7, etype="order"), event("u", 8, n=1), event("u", "x", n=2)],
                 {}.get)
    bandit = pipe.coldstart.bandit
    assert bandit.orders == {7: 1.0} and bandit.clicks == {8: 1.0}


def test_coldstart_bandit_stays_under_max_items() -> None:
    """Every event's SKU gets statistics, model or not: many SKUs must not grow it unbounded;
    the most demanded SKUs keep theirs."""
    from streams.channels.coldstart import ColdStartChannel
    from streams.contracts.events import Event
    from streams.settings import Settings

    ch = ColdStartChannel(Settings.from_env({}, coldstart_max_items=40))
    for _ in range(5):
        ch.learn(Event("e", "u", 7, "order", 0))
    for item in range(100, 1100):
        ch.learn(Event(f"e{item}", "u", item, "click", 0))
        ch.learn(Event(f"o{item}", "u", item, "order", 0))
        assert len(ch.bandit.clicks) <= 40 and len(ch.bandit.orders) <= 40
    assert ch.bandit.orders[7] == 5.0
