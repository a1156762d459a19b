"""SIDRec as served: it learns a walk, upserted items are recalled by their codes, exclusions
hold, the artifact round-trips (with upserts growing the catalogue) and rejects corruption."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.artifacts import ArtifactError
from models.recall.data import leave_one_out
from models.recall.evaluate import rank_metrics, recaller_ranking
from models.recall.sidrec_recaller import SIDRecRecaller
from models.recall.sidrec_train import SIDRecTrainConfig, fit_sidrec
from tests.fixtures.recall_models import clustered_vectors, synthetic_dataset, tiny_sidrec


@pytest.fixture(scope="module")
def trained() -> SIDRecRecaller:
    rec = tiny_sidrec(dropout=0.1, id_drop=0.2)
    ds = synthetic_dataset(n_users=120)
    cfg = SIDRecTrainConfig(epochs=40, eval_every=10, patience=2, max_hist=8, lr=3e-3,
                            batch_size=16, beam=10, weights=(1.0,))
    fit_sidrec(rec, ds, cfg, set(), progress=False)
    return rec


def test_every_mode_learns_the_walk(trained: SIDRecRecaller) -> None:
    test = leave_one_out(synthetic_dataset(n_users=120), "test", 8)
    for mode in ("beam", "item", "hybrid"):
        trained.mode = mode
        hit = rank_metrics(recaller_ranking(trained, test, 10, 10, False, progress=False),
                           test.targets)["recall@10"]
        assert hit > 0.8, mode  # popularity gets ~10 / 40 here
    trained.mode = "hybrid"


def test_an_upserted_item_is_recalled_by_its_codes(trained: SIDRecRecaller) -> None:
    vec = clustered_vectors()[6] + 1e-3  # item 7's text, a new id beyond the catalogue
    sid = trained.add_item(41, vector=vec)
    assert sid[:-1] == trained.table.sids[7][:-1] and sid != trained.table.sids[7]
    for mode in ("item", "hybrid"):
        trained.mode = mode
        # the walk's next item is 7: 41 shares its content codes (with 15 and 31), so it is
        # recalled here, and not for a history that points to another cluster
        res = trained.recall([[3, 4, 5, 6], [20, 21, 22, 23]], k=10)
        assert 41 in res.items[0].tolist() and 41 not in res.items[1].tolist(), mode
    trained.mode = "hybrid"


def test_recall_excludes_history_and_skips_unknown_items(trained: SIDRecRecaller) -> None:
    res = trained.recall([[3, 4, 5, 6], [999], []], k=5, exclude=[{7, 8}, set(), set()])
    assert not {7, 8} & set(res.items[0].tolist())
    assert np.all(np.diff(res.scores[0]) <= 0)
    assert res.items[1].tolist() == [-1] * 5 and res.items[2].tolist() == [-1] * 5


def test_artifact_round_trips_with_upserts_and_rejects_corruption(
        trained: SIDRecRecaller, tmp_path: Path) -> None:
    trained.add_item(45, vector=clustered_vectors()[2] + 1e-3)
    hist = [[1, 2, 3], [10, 11], [3, 4, 5, 6]]
    trained.new_item_boost, trained.new_item_slots = 0.5, 1  # the new-item choice travels
    try:
        path = trained.save(tmp_path, "hash", {}, {"x": 1})
    finally:
        trained.new_item_boost, trained.new_item_slots = 0.0, 0
    again = SIDRecRecaller.load(tmp_path)
    assert (again.mode, again.weight) == (trained.mode, trained.weight)
    assert (again.new_item_boost, again.new_item_slots) == (0.5, 1)
    again.new_item_boost, again.new_item_slots = 0.0, 0
    np.testing.assert_array_equal(again.recall(hist, k=5).items, trained.recall(hist, k=5).items)
    assert again.table.sids[45] == trained.table.sids[45]
    (path / "sidrec.pt").write_bytes(b"broken")
    with pytest.raises(ArtifactError, match="sha256"):
        SIDRecRecaller.load(path)


def test_an_upsert_with_a_vector_of_the_wrong_size_is_refused(trained: SIDRecRecaller) -> None:
    with pytest.raises(ValueError, match="16-d ones"):
        trained.add_item(50, vector=np.zeros(384, np.float32))
    assert 50 not in trained.table.sids
