"""The SASRec-CE baseline: it learns a predictable walk, excludes, and round-trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.artifacts import ArtifactError
from models.recall.data import leave_one_out
from models.recall.evaluate import rank_metrics, recaller_ranking
from models.recall.sasrec import SASRec, SASRecConfig, SASRecRecaller, left_pad
from models.recall.sasrec_train import SASRecTrainConfig, fit_sasrec
from tests.fixtures.recall_models import N_ITEMS, synthetic_dataset


def test_left_pad_keeps_the_most_recent_known_items() -> None:
    seq = left_pad([[1, 2, 3], [7, 99, 8], []], max_len=2, n_items=10)
    assert seq.tolist() == [[2, 3], [7, 8], [0, 0]]


def test_padding_never_leaks_into_the_last_position() -> None:
    torch.manual_seed(0)
    model = SASRec(SASRecConfig(n_items=N_ITEMS, max_len=6, d_model=16, n_heads=2,
                                dropout=0.0)).eval()
    short = model(left_pad([[3, 4]], 6, N_ITEMS))[:, -1]
    longer = model(left_pad([[3, 4]], 3, N_ITEMS))[:, -1]  # less padding, same items
    torch.testing.assert_close(short, longer, atol=1e-5, rtol=1e-5)


def test_learns_the_walk_excludes_history_and_round_trips(tmp_path: Path) -> None:
    ds = synthetic_dataset(n_users=120)
    rec, info = fit_sasrec(ds, SASRecTrainConfig(
        model={"d_model": 32, "dropout": 0.1}, epochs=40, eval_every=10, patience=2,
        max_hist=8, lr=3e-3, batch_size=16), progress=False)
    test = leave_one_out(ds, "test", 8)
    hit = rank_metrics(recaller_ranking(rec, test, 10, 0, False, progress=False),
                       test.targets)["recall@10"]
    assert hit > 0.8 and info["best_epoch"] > 0  # popularity gets ~10 / 40 here
    res = rec.recall(test.histories[:5], k=5, exclude=test.seen[:5])
    assert not any(set(row) & seen for row, seen in zip(res.items.tolist(), test.seen[:5],
                                                        strict=True))
    assert np.all(np.diff(res.scores, axis=1) <= 0)
    path = rec.save(tmp_path, ds.data_hash(), {}, {"x": 1})
    again = SASRecRecaller.load(tmp_path)
    np.testing.assert_array_equal(again.recall(test.histories[:5], k=5).items,
                                  rec.recall(test.histories[:5], k=5).items)
    (path / "sasrec.pt").write_bytes(b"broken")
    with pytest.raises(ArtifactError, match="sha256"):
        SASRecRecaller.load(path)


def test_a_history_of_unknown_items_gets_no_items() -> None:
    rec = SASRecRecaller(SASRec(SASRecConfig(n_items=5, max_len=4, d_model=8, n_heads=2)))
    res = rec.recall([[9, 10], [1]], k=3)
    assert res.items[0].tolist() == [-1, -1, -1] and (res.items[1] > 0).all()
