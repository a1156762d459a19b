"""Replay order and the data set as it stood before a window of it."""

from __future__ import annotations

from models.data.dataset import ItemMeta, SeqDataset
from models.data.timeline import before_window, interactions


def _ds() -> SeqDataset:
    seqs = {1: [10, 11, 12], 2: [20, 21], 3: [30]}
    ts = {1: [1, 5, 9], 2: [2, 8], 3: [7]}
    ratings = {1: [5.0, 1.0, 4.0], 2: [3.0, 4.0], 3: [2.0]}
    items = {i: ItemMeta(i) for s in seqs.values() for i in s}
    return SeqDataset("t", seqs, items, timestamps=ts, ratings=ratings)


def test_the_window_is_the_last_interactions_in_time_for_every_user_at_once() -> None:
    ds = _ds()
    assert [(it.user_id, it.item_id) for it in interactions(ds)] == [
        (1, 10), (2, 20), (1, 11), (3, 30), (2, 21), (1, 12)]
    cut = before_window(ds, 3)  # drops 30 (t=7), 21 (t=8), 12 (t=9); user 3 has nothing left
    assert cut.sequences == {1: [10, 11], 2: [20]}
    assert cut.timestamps == {1: [1, 5], 2: [2]} and cut.ratings == {1: [5.0, 1.0], 2: [3.0]}
    assert cut.items is ds.items and cut.data_hash() != ds.data_hash()
    assert before_window(ds, 0) is ds and before_window(ds, 99).sequences == {}
