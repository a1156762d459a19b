from __future__ import annotations

import asyncio
from pathlib import Path

from models.artifacts import versions
from streams.metrics import Metrics
from streams.pipeline.model_set import apply_upserts
from streams.runtime.model_watcher import ModelWatcher
from streams.settings import Settings
from tests.fixtures.stream_models import copy_version, item_meta, write_i2i


def _watcher(model_dir: Path) -> ModelWatcher:
    return ModelWatcher(Settings.from_env({}, model_dir=model_dir, model_poll_s=0.01), Metrics())


def _refused(w: ModelWatcher, kind: str) -> float:
    return w.metrics.model_refused.labels(kind)._value.get()


def test_initial_load_serves_latest_of_each_kind(model_dir: Path) -> None:
    w = _watcher(model_dir)
    models = w.load_initial()
    assert models.recaller is not None and models.ranker is not None
    assert models.version == f"recall:{models.recall_version}+ranker:{models.ranker_version}"
    info = {s.labels["kind"]: s.labels["version"]
            for m in w.metrics.model_info.collect() for s in m.samples if s.value == 1}
    assert info == {"recall": models.recall_version, "ranker": models.ranker_version}


def test_corrupt_latest_falls_back_to_newest_valid(model_dir: Path) -> None:
    good = versions(model_dir / "recall")[0]
    copy_version(model_dir, "recall", "29990101T000000-broken", corrupt=True)
    w = _watcher(model_dir)
    models = w.load_initial()
    assert models.recall_version == good and _refused(w, "recall") == 1


def test_hot_swap_to_a_new_version_keeps_upserted_items(model_dir: Path) -> None:
    w = _watcher(model_dir)
    old = w.load_initial()
    meta = item_meta(5)
    new_item = type(meta)(41, meta.title, meta.brand, meta.categories, meta.price)
    assert apply_upserts(old, [new_item], w.upserts) == 1
    sid = old.recaller.table.sids[41]  # type: ignore[union-attr]
    assert asyncio.run(w.poll(old)) is None  # nothing new published
    copy_version(model_dir, "recall", "29990101T000000-next")
    w.next_poll = 0.0
    new = asyncio.run(w.poll(old))
    assert new is not None and new.recall_version == "29990101T000000-next"
    assert new.recaller is not old.recaller and new.ranker is old.ranker
    assert new.recaller.table.sids[41] == sid  # type: ignore[union-attr]
    assert w.metrics.model_swaps.labels("recall")._value.get() == 1


def test_corrupt_new_version_is_refused_and_old_keeps_serving(model_dir: Path) -> None:
    w = _watcher(model_dir)
    old = w.load_initial()
    copy_version(model_dir, "ranker", "29990101-000000-broken", corrupt=True)
    w.next_poll = 0.0
    assert asyncio.run(w.poll(old)) is None
    assert _refused(w, "ranker") == 1 and w.serving["ranker"] == old.ranker_version
    w.next_poll = 0.0
    assert asyncio.run(w.poll(old)) is None and _refused(w, "ranker") == 1  # not retried


def test_i2i_table_is_served_and_refreshed(model_dir: Path) -> None:
    write_i2i(model_dir)
    w = _watcher(model_dir)
    models = w.load_initial()
    assert models.i2i is not None and models.i2i[3, 0] == 4
    assert models.version.endswith("+i2i:20990101T000000-i2i")
    write_i2i(model_dir, "20990102T000000-i2i")
    w.next_poll = 0.0
    new = asyncio.run(w.poll(models))
    assert new is not None and new.i2i_version == "20990102T000000-i2i"
    assert new.recaller is models.recaller
