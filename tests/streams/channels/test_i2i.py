"""The DeepI2I channel in a pipeline with a real similar-items table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from streams.channels.covisit import CoVisitation
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


def test_i2i_channel_brings_table_neighbours(model_dir: Path) -> None:
    from streams.channels.i2i import I2I
    from tests.fixtures.stream_models import write_i2i

    write_i2i(model_dir)
    pipe, _, _ = make(model_dir, quota_generative=0, quota_covisit=0, quota_popular=0)
    out = pipe.process([rec("u9", 10, n=1)], {}.get)
    items = {c.item_id: c.source for c in lists_of(out)["u9"]}
    assert items == {11: I2I, 12: I2I, 13: I2I, 14: I2I, 15: I2I}
