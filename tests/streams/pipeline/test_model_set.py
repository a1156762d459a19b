"""Catalogue upserts into the model set: SIDs, trie entries, ranker rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from streams.channels.generative import GENERATIVE
from streams.metrics import Metrics
from streams.pipeline.model_set import apply_upserts
from streams.runtime.model_watcher import ModelWatcher
from streams.settings import Settings
from tests.fixtures.model_pipelines import lists_of, make, rec
from tests.fixtures.stream_models import item_meta


def _watcher(model_dir: Path) -> ModelWatcher:
    return ModelWatcher(Settings.from_env({}, model_dir=model_dir, model_poll_s=0.01), Metrics())


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


def test_a_sidrec_artifact_serves_the_generative_channel_and_takes_upserts(
        tmp_path: Path) -> None:
    import torch

    from tests.fixtures.stream_models import build_sidrec_model_dir

    torch.set_num_threads(1)
    pipe, _, watcher = make(build_sidrec_model_dir(tmp_path), quota_covisit=0, quota_popular=0)
    assert type(pipe.models.recaller).__name__ == "SIDRecRecaller"
    meta = item_meta(5)  # same text as item 5: same codes, next collision slot
    clone = type(meta)(77, meta.title, meta.brand, meta.categories, meta.price)
    assert apply_upserts(pipe.models, [clone], watcher.upserts) == 1
    out = pipe.process([rec("u4", 3, n=1), rec("u4", 4, n=2)], {}.get)
    items = {c.item_id: c.source for c in lists_of(out)["u4"]}
    assert items.get(5) == GENERATIVE and items.get(77) == GENERATIVE


def test_upsert_log_stays_under_max_items_dropping_the_oldest_upserts() -> None:
    from models.data.dataset import ItemMeta
    from streams.pipeline.model_set import UpsertLog

    log_ = UpsertLog(max_items=10)
    for item in range(1, 100):
        log_.add(ItemMeta(item), None)
        assert len(log_) <= 10
    log_.add(ItemMeta(95), None)  # upserted again: the newest now
    metas, _ = log_.since(0)
    assert [m.item_id for m in metas] == [90, 91, 92, 93, 94, 96, 97, 98, 99, 95]
