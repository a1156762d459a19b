"""Serving: provider choice falls back quietly, threads, score() for many users, the blend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from export import serving
from export.onnx_export import export_onnx
from export.serving import (
    CPU,
    CUDA,
    RankBatch,
    RankerSession,
    TorchRanker,
    choose_providers,
    pad_candidates,
)
from models.data.dataset import ItemMeta
from models.rank.features import EVENT_IDS, ItemFeatures
from models.rank.model import Ranker
from models.rank.toy import toy_dataset
from models.rank.train import model_config

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Ranker, ItemFeatures, Path]:
    feats = ItemFeatures.from_dataset(toy_dataset(n_users=30, n_items=40))
    torch.manual_seed(0)
    model = Ranker(model_config(feats, 8, d=16, hidden=16)).eval()
    return model, feats, export_onnx(model, tmp_path_factory.mktemp("srv") / "ranker.onnx")


@pytest.fixture()
def fresh_choice():  # type: ignore[no-untyped-def]
    choose_providers.cache_clear()
    yield
    choose_providers.cache_clear()


def test_cpu_machine_gets_cpu(fresh_choice: None, capfd: pytest.CaptureFixture[str]) -> None:
    assert choose_providers() == (CPU,)
    assert choose_providers(prefer_cuda=False) == (CPU,)
    assert capfd.readouterr() == ("", "")


def test_cuda_listed_but_unusable_falls_back_quietly(
        fresh_choice: None, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(torch.version, "cuda", None)  # torch cannot tell: a real probe session
    assert choose_providers() == (CPU,)
    choose_providers.cache_clear()
    monkeypatch.setattr(torch.version, "cuda", "12.4")  # CUDA torch build, no device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_providers() == (CPU,)
    assert capfd.readouterr() == ("", "")


def test_cuda_chosen_when_usable(fresh_choice: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_providers() == (CUDA, CPU)
    monkeypatch.setattr(serving, "_probe_cuda", lambda _: True)
    monkeypatch.setattr(torch.version, "cuda", None)
    choose_providers.cache_clear()
    assert choose_providers() == (CUDA, CPU)


def test_session_threads_and_provider(setup: tuple[Ranker, ItemFeatures, Path],
                                      capfd: pytest.CaptureFixture[str]) -> None:
    model, feats, path = setup
    sess = RankerSession(path, feats, model.cfg.max_hist, intra_op_threads=2, inter_op_threads=1)
    assert sess.providers == [CPU]
    assert sess.session.get_session_options().intra_op_num_threads == 2
    assert capfd.readouterr().err == ""


def _batch(feats: ItemFeatures, users: int, cands: int, seed: int) -> RankBatch:
    rng = np.random.default_rng(seed)
    hist = rng.integers(1, feats.n_trained_items + 1, (users, 12))  # longer than max_hist
    hist[0] = 0  # an empty history
    hist[1:2, :9] = 0  # a short one
    events = np.where(hist > 0, rng.choice(list(EVENT_IDS.values()), hist.shape), 0)
    age = rng.exponential(600.0, users)
    age[2:3] = np.nan
    return RankBatch(hist, events, age, rng.integers(1, feats.n_trained_items + 1,
                                                     (users, cands)))


def test_score_many_users_matches_torch(setup: tuple[Ranker, ItemFeatures, Path]) -> None:
    model, feats, path = setup
    sess, ref = RankerSession(path, feats, model.cfg.max_hist), TorchRanker(model, feats)
    for users, cands in [(1, 1), (7, 30), (120, 85)]:
        batch = _batch(feats, users, cands, seed=users)
        got, want = sess.score(batch), ref.score(batch)
        for g, w in zip(got, want, strict=True):
            assert g.shape == (users, cands)
            np.testing.assert_allclose(g, w, atol=1e-4)
        assert np.isfinite(got.pctr).all()


def test_flat_candidates_and_new_items(setup: tuple[Ranker, ItemFeatures, Path]) -> None:
    model, feats, path = setup
    sess = RankerSession(path, feats, model.cfg.max_hist)
    items, users = np.array([5, 6, 7, 8, 9, 10]), np.array([2, 0, 2, 2, 0, 3])
    padded, rows, cols = pad_candidates(items, users, n_users=4)
    assert padded.shape == (4, 3) and (padded[rows, cols] == items).all()
    assert (padded[1] == 0).all()
    batch = _batch(feats, 4, 1, seed=1)._replace(cand_items=padded)
    scores = sess.score(batch)
    assert (scores.pctr[1] == 0).all()  # padding scores 0
    # an item upserted after training (and one never seen) scores without errors
    feats.upsert(500, ItemMeta(500, brand="brand1-0", categories=(("cat1",),)))
    batch = batch._replace(cand_items=np.array([[500, 9999, 3]] * 4))
    new = sess.score(batch)
    assert np.isfinite(new.pctr).all() and (new.pctr > 0).all()


def test_upserts_in_place_and_growth_are_seen(setup: tuple[Ranker, ItemFeatures, Path]) -> None:
    """The bound feature table is the live one: in-place upserts and re-allocation (growth)."""
    model, _, path = setup
    feats = ItemFeatures.from_dataset(toy_dataset(n_users=30, n_items=40))
    sess, ref = RankerSession(path, feats, model.cfg.max_hist), TorchRanker(model, feats)
    batch = _batch(feats, 3, 5, seed=2)._replace(cand_items=np.array([[7, 8, 9, 10, 11]] * 3))
    before = sess.score(batch).pctr
    feats.upsert(7, ItemMeta(7, brand="brand9-9", categories=(("cat3",),), price=3.0))
    after, want = sess.score(batch), ref.score(batch)
    assert not np.allclose(before[:, 0], after.pctr[:, 0])  # item 7's new features count
    np.testing.assert_allclose(after.pctr, want.pctr, atol=1e-5)
    table = feats.table
    feats.upsert(10 * len(table), ItemMeta(10 * len(table), brand="brand1-0"))
    assert feats.table is not table  # grown: a new array, re-bound on the next call
    batch = batch._replace(cand_items=np.array([[10 * len(table), 7, 0, 3, 10 ** 9]] * 3))
    for g, w in zip(sess.score(batch), ref.score(batch), strict=True):
        np.testing.assert_allclose(g, w, atol=1e-5)


def test_missing_age_is_unknown(setup: tuple[Ranker, ItemFeatures, Path]) -> None:
    model, feats, path = setup
    sess = RankerSession(path, feats, model.cfg.max_hist)
    batch = _batch(feats, 4, 3, seed=5)
    nan_age = sess.score(batch._replace(last_age_s=np.full(4, np.nan)))
    for a, b in zip(sess.score(batch._replace(last_age_s=None)), nan_age, strict=True):
        np.testing.assert_array_equal(a, b)
