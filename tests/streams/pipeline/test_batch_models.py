"""The micro-batch with real (tiny, trained) generative recall and ONNX ranker artifacts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from streams.channels.covisit import CoVisitation
from streams.channels.generative import GENERATIVE
from streams.channels.popularity import DecayedPopularity
from streams.contracts.output import Candidate
from streams.metrics import Metrics
from streams.pipeline.batch import Pipeline, Record
from streams.runtime.model_watcher import ModelWatcher
from streams.settings import Settings

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


def test_non_trigger_events_update_state_only(model_dir: Path) -> None:
    pipe, _, _ = make(model_dir, trigger_types="click,order")
    out = pipe.process([rec("u6", 3, "view", 1)], {}.get)
    assert out.applied == 1 and not out.lists and "u6" in out.states
