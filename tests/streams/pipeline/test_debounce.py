"""Per-user debounce of recomputes in a pipeline with real artifacts."""

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
