"""The pipeline with real (tiny, trained) generative recall and ONNX ranker artifacts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streams.channels.base import COVISIT, POPULAR
from streams.channels.covisit import CoVisitation
from streams.channels.generative import GENERATIVE
from streams.channels.popularity import DecayedPopularity
from streams.contracts.output import Candidate
from streams.metrics import Metrics
from streams.pipeline.batch import Pipeline, Record
from streams.pipeline.model_set import ModelSet, apply_upserts
from streams.pipeline.rank import select_candidates
from streams.runtime.model_watcher import ModelWatcher
from streams.settings import Settings
from tests.streams.model_fixtures import item_meta

NOW_S = 1_795_000_000.0


class Clock:
    def __init__(self) -> None:
        self.t = NOW_S

    def __call__(self) -> float:
        return self.t


def make(model_dir: Path, **over: Any) -> tuple[Pipeline, Clock, ModelWatcher]:
    # the search in this process: the child process is tested in tests/models and through
    # the workers of the integration tests
    settings = Settings.from_env({}, model_dir=model_dir, **{"model_process": False, **over})
    clock, metrics = Clock(), Metrics()
    pipe = Pipeline(settings, CoVisitation(), DecayedPopularity(), metrics, clock=clock)
    watcher = ModelWatcher(settings, metrics)
    pipe.models = watcher.load_initial()
    return pipe, clock, watcher


def rec(user: Any, item: Any, etype: str = "click", n: int = 0) -> Record:
    value = json.dumps({"event_id": f"{user}-{item}-{etype}-{n}", "user_id": user,
                        "item_id": item, "type": etype, "ts": int(NOW_S * 1000) - 10})
    return Record(str(user).encode(), value.encode(), "sidstream-events", 0, n)


def lists_of(out: Any) -> dict[Any, list[Candidate]]:
    return {r.user_id: list(r.items) for r in out.lists}


def test_select_candidates_quotas_priority_exclusion_and_fill() -> None:
    channels = {GENERATIVE: {1: 0.9, 2: 0.5, 3: 0.1},
                COVISIT: {2: 9.0, 4: 5.0, 5: 4.0},
                POPULAR: {6: 3.0, 7: 2.0, 8: 1.0, 1: 0.5}}
    quotas = {GENERATIVE: 2, COVISIT: 1, POPULAR: 1}
    got = select_candidates(channels, quotas, exclude={1}, fill_to=4)
    assert [(c.item_id, c.source) for c in got] == [
        (2, GENERATIVE), (3, GENERATIVE), (4, COVISIT), (6, POPULAR)]
    cold = select_candidates({GENERATIVE: {}, COVISIT: {}, POPULAR: channels[POPULAR]}, quotas,
                             exclude=set(), fill_to=3)
    assert [c.item_id for c in cold] == [6, 7, 8]  # popularity fills lists of cold users
    off = select_candidates({POPULAR: channels[POPULAR]}, {POPULAR: 0}, set(), fill_to=3)
    assert off == []


def test_click_gives_generative_items_ranked_by_the_ranker(model_dir: Path) -> None:
    pipe, _, _ = make(model_dir, quota_covisit=0, quota_popular=0)
    table: dict[str, Any] = {}
    out = pipe.process([rec("u1", 3, n=1), rec("u1", 4, n=2)], table.get)
    items = lists_of(out)["u1"]
    assert items and {c.source for c in items} == {GENERATIVE}
    assert items[0].item_id == 5  # the walk: next = last + 1, first after ranking too
    assert not {3, 4} & {c.item_id for c in items}  # seen items are excluded
    assert out.lists[0].model_version.startswith("recall:") and "+ranker:" in \
        out.lists[0].model_version
    scores = [c.score for c in items]
    assert scores == sorted(scores, reverse=True)


def test_ordered_items_are_excluded_inside_the_beam(model_dir: Path) -> None:
    pipe, _, _ = make(model_dir, exclude_seen=False, quota_covisit=0, quota_popular=0)
    table: dict[str, Any] = {}
    first = pipe.process([rec("u3", 5, "order", 1)], table.get)
    table.update({k: v for k, (_, v) in first.states.items()})
    out = pipe.process([rec("u3", 3, n=2), rec("u3", 4, n=3)], table.get)
    items = [c.item_id for c in lists_of(out)["u3"]]
    assert items and 5 not in items and 4 in items  # seen items allowed, ordered never
    # inside the beam: the excluded item's slot goes to another item, the list stays full
    state = pipe_state(table, out)
    rec_ = pipe.models.recaller
    assert rec_ is not None
    free = rec_.recall([[3, 4]], k=8, beam=8).items[0]
    held = rec_.recall([[3, 4]], k=8, beam=8, exclude=[{5}]).items[0]
    assert 5 in free and 5 not in held and (held > 0).sum() == (free > 0).sum()
    assert state.ordered == [5]


def pipe_state(table: dict[str, Any], out: Any) -> Any:
    from streams.pipeline.state import UserState

    table.update({k: v for k, (_, v) in out.states.items()})
    return UserState.from_json(table["u3"])


def test_new_item_gets_a_sid_and_becomes_recallable(model_dir: Path) -> None:
    pipe, _, watcher = make(model_dir, quota_covisit=0, quota_popular=0)
    meta = item_meta(5)  # same text as item 5: same codes, next collision slot
    clone = type(meta)(77, meta.title, meta.brand, meta.categories, meta.price)
    apply_upserts(pipe.models, [clone], watcher.upserts)
    out = pipe.process([rec("u4", 3, n=1), rec("u4", 4, n=2)], {}.get)
    items = {c.item_id: c.source for c in lists_of(out)["u4"]}
    assert items.get(77) == GENERATIVE


def test_debounce_defers_then_recomputes_once(model_dir: Path) -> None:
    pipe, clock, _ = make(model_dir, debounce_ms=1000)
    table: dict[str, Any] = {}

    def run(records: list[Record]) -> Any:
        out = pipe.process(records, table.get)
        table.update({k: v for k, (_, v) in out.states.items()})
        return out

    assert "u5" in lists_of(run([rec("u5", 3, n=1)]))
    clock.t += 0.2
    out = run([rec("u5", 4, n=2)])
    assert not out.lists and out.deferred == 1 and out.applied == 1
    clock.t += 0.3
    assert not run([rec("u5", 6, n=3)]).lists  # still inside the interval: one deferral
    assert not run([]).lists
    clock.t += 0.6
    later = lists_of(run([]))["u5"]
    assert later and not {3, 4, 6} & {c.item_id for c in later}


def test_non_trigger_events_update_state_only(model_dir: Path) -> None:
    pipe, _, _ = make(model_dir, trigger_types="click,order")
    out = pipe.process([rec("u6", 3, "view", 1)], {}.get)
    assert out.applied == 1 and not out.lists and "u6" in out.states


def test_unchanged_inputs_reuse_the_cached_recall(model_dir: Path) -> None:
    pipe, _, _ = make(model_dir)
    table: dict[str, Any] = {}
    first = pipe.process([rec("u7", 3, n=1)], table.get)
    table.update({k: v for k, (_, v) in first.states.items()})
    again = pipe.process([rec("u7", 3, n=1)], table.get)  # a redelivery: same inputs
    assert again.duplicates == 1 and lists_of(again)["u7"] == lists_of(first)["u7"]
    cache = pipe.metrics.recall_cache
    assert cache.labels("hit")._value.get() == 1 and cache.labels("miss")._value.get() == 1


@pytest.mark.parametrize("users", [1, 7])
def test_no_ranker_blends_channels(model_dir: Path, users: int) -> None:
    pipe, _, _ = make(model_dir)
    pipe.models = ModelSet(recaller=pipe.models.recaller,
                           recall_version=pipe.models.recall_version)
    out = pipe.process([rec(f"w{u}", 3 + u, n=u) for u in range(users)], {}.get)
    assert len(out.lists) == users
    assert all(r.items and r.model_version.startswith("recall:") and "ranker" not in
               r.model_version for r in out.lists)


def test_returning_users_reuse_their_encoded_history(model_dir: Path) -> None:
    pipe, _, _ = make(model_dir)
    recaller = pipe.models.recaller
    assert recaller is not None and recaller.prefix_cache is not None
    table: dict[str, Any] = {}
    for n, item in enumerate((3, 4, 5), start=1):
        out = pipe.process([rec("u8", item, n=n)], table.get)
        table.update({k: v for k, (_, v) in out.states.items()})
    assert recaller.prefix_cache.misses == 1 and recaller.prefix_cache.hits == 2


def test_i2i_channel_brings_table_neighbours(model_dir: Path) -> None:
    from streams.channels.i2i import I2I
    from tests.streams.test_live_models import write_i2i

    write_i2i(model_dir)
    pipe, _, _ = make(model_dir, quota_generative=0, quota_covisit=0, quota_popular=0)
    out = pipe.process([rec("u9", 10, n=1)], {}.get)
    items = {c.item_id: c.source for c in lists_of(out)["u9"]}
    assert items == {11: I2I, 12: I2I, 13: I2I, 14: I2I, 15: I2I}
