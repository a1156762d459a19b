"""Catalogue upserts into the model set: SIDs, trie entries, ranker rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from streams.channels.covisit import CoVisitation
from streams.channels.generative import GENERATIVE
from streams.channels.popularity import DecayedPopularity
from streams.contracts.output import Candidate
from streams.metrics import Metrics
from streams.pipeline.batch import Pipeline, Record
from streams.pipeline.model_set import apply_upserts
from streams.runtime.model_watcher import ModelWatcher
from streams.settings import Settings
from tests.fixtures.stream_models import item_meta


def _watcher(model_dir: Path) -> ModelWatcher:
    return ModelWatcher(Settings.from_env({}, model_dir=model_dir, model_poll_s=0.01), Metrics())
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


def test_new_item_gets_a_sid_and_becomes_recallable(model_dir: Path) -> None:
    pipe, _, watcher = make(model_dir, quota_covisit=0, quota_popular=0)
    meta = item_meta(5)  # same text as item 5: same codes, next collision slot
    clone = type(meta)(77, meta.title, meta.brand, meta.categories, meta.price)
    apply_upserts(pipe.models, [clone], watcher.upserts)
    out = pipe.process([rec("u4", 3, n=1), rec("u4", 4, n=2)], {}.get)
    items = {c.item_id: c.source for c in lists_of(out)["u4"]}
    assert items.get(77) == GENERATIVE


def test_upsert_gives_sid_and_ranker_row_and_keeps_known_sids(model_dir: Path) -> None:
    w = _watcher(model_dir)
    models = w.load_initial()
    rec, ranker = models.recaller, models.ranker
    assert rec is not None and ranker is not None
    known = rec.table.sids[3]
    row3 = ranker.features.table[3].copy()
    meta = item_meta(3)
    apply_upserts(models, [meta, item_meta(45)], w.upserts)
    keep = [0, 1, 2, 4, 5, 6]  # id, category, brand, SID tokens (the price is new data)
    assert rec.table.sids[3] == known
    assert np.array_equal(ranker.features.table[3][keep], row3[keep])
    assert 45 in rec.table.sids and rec.trie.n_items == 41
    assert ranker.features.table[45][0] == ranker.features.unknown_id  # untrained id
    assert (ranker.features.table[45][4:6] > 0).all()  # its SID codes are features
