"""The id stand-in of items added after training: fitted on warm items, used for new ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.recall.sidrec_recaller import SIDRecRecaller
from models.recall.sidrec_stand_in import _cv_errors, fit_stand_in
from tests.fixtures.recall_models import clustered_vectors, tiny_sidrec


def _linear_ids(rec: SIDRecRecaller) -> tuple[torch.Tensor, torch.Tensor]:
    """Give every warm item the id part ``v @ a + b`` of its vector; returns (a, b)."""
    model = rec.model
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(model.cfg.content_dim, model.cfg.d_model, generator=gen)
    b = torch.randn(model.cfg.d_model, generator=gen)
    with torch.no_grad():
        warm = model.has_id.nonzero().squeeze(-1)
        model.id_emb.weight[warm] = model.vectors[warm] @ a + b  # type: ignore[union-attr]
    return a, b


def test_a_new_item_gets_the_id_part_its_vector_predicts() -> None:
    """Warm id parts that are a linear function of the vectors: the fitted stand-in gives a
    new item (no id row) that function of its own vector, and leaves warm items alone."""
    rec = tiny_sidrec(held_out=frozenset({5}), content=True)
    model = rec.model.eval()
    a, b = _linear_ids(rec)
    before = model.item_table()
    info = fit_stand_in(model)
    assert info["cv_mse"] < 0.01 * info["zero_mse"]
    vec = torch.from_numpy(clustered_vectors()[4])
    rec.add_item(5, vector=vec.numpy())
    table = rec.item_table()
    codes_and_vector = table[5] - (vec @ a + b)
    model.stand_in.zero_()
    rec.reset_item_table()
    torch.testing.assert_close(codes_and_vector, rec.item_table()[5], atol=0.05, rtol=0)
    torch.testing.assert_close(table[:5], before[:5])


def test_without_vectors_the_stand_in_is_the_mean_id_part() -> None:
    rec = tiny_sidrec(held_out=frozenset({5}))
    model = rec.model.eval()
    with torch.no_grad():
        model.id_emb.weight.normal_()  # type: ignore[union-attr]
    fit_stand_in(model)
    warm = model.has_id.nonzero().squeeze(-1)
    torch.testing.assert_close(model.stand_in[-1], model.id_emb.weight[warm].mean(0))  # type: ignore[union-attr]


def test_training_never_sees_the_stand_in() -> None:
    """Id-dropped items in training are scored without an id part, as before the fit."""
    rec = tiny_sidrec(held_out=frozenset({5}), content=True)
    model = rec.model
    _linear_ids(rec)
    fit_stand_in(model)
    rec.add_item(5, vector=clustered_vectors()[4])
    model.train()
    trained = model.item_table(torch.ones(model.n_rows, dtype=torch.bool))
    model.stand_in.zero_()
    torch.testing.assert_close(trained, model.item_table(torch.ones(model.n_rows,
                                                                    dtype=torch.bool)))


def test_a_model_without_id_parts_has_nothing_to_stand_in_for() -> None:
    rec = tiny_sidrec()
    rec.model.id_emb = None
    with pytest.raises(ValueError, match="no id part"):
        fit_stand_in(rec.model)


def test_an_artifact_saved_without_a_stand_in_gets_one_fitted_at_load(tmp_path: Path) -> None:
    rec = tiny_sidrec(held_out=frozenset({5}), content=True)
    _linear_ids(rec)
    kept = rec.model._buffers.pop("stand_in")  # saved as the artifacts before the stand-in
    path = rec.save(tmp_path, "abc", {}, {})
    assert "stand_in" not in torch.load(path / "sidrec.pt", weights_only=True)
    rec.model._buffers["stand_in"] = kept
    loaded = SIDRecRecaller.load(path)
    assert bool(loaded.model.stand_in.any())
    fit_stand_in(rec.model)
    torch.testing.assert_close(loaded.model.stand_in, rec.model.stand_in)


def test_each_strengths_cv_error_is_that_of_its_own_fits() -> None:
    """The folds' normal equations are shared by every strength; each strength's error must
    still be the one of fitting it alone on each fold (no strength's weights reused)."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(60, 6, generator=gen, dtype=torch.float64)
    y = x @ torch.randn(6, 3, generator=gen, dtype=torch.float64) + torch.randn(
        60, 3, generator=gen, dtype=torch.float64)
    lambdas = (1e-3, 1.0, 100.0)
    order = torch.randperm(60, generator=torch.Generator().manual_seed(0))
    for lam, got in _cv_errors(x, y, lambdas, folds=4).items():
        err = 0.0
        for f in range(4):
            test = order[f::4]
            train = torch.ones(60, dtype=torch.bool)
            train[test] = False
            xt, xr, yr = x[test], x[train], y[train]
            xc = xr - xr.mean(0)
            gram = xc.T @ xc
            w = torch.linalg.solve(gram + lam * gram.diagonal().mean() * torch.eye(6),
                                   xc.T @ (yr - yr.mean(0)))
            pred = (xt - xr.mean(0)) @ w + yr.mean(0)
            err += float(((pred - y[test]) ** 2).sum())
        assert got == pytest.approx(err / 60, rel=1e-6)
    errors = _cv_errors(x, y, lambdas, folds=4)
    assert errors[100.0] > errors[1e-3]  # a real signal: heavy shrinkage costs


def test_a_new_item_gets_the_id_part_of_its_nearest_warm_items() -> None:
    """The neighbour stand-in: a new item whose vector is a warm item's gets that item's id
    part with one neighbour, and the cosine-weighted mean of the nearest k with more;
    warm rows are left alone, and no neighbours means no stand-in."""
    rec = tiny_sidrec(held_out=frozenset({5}), content=True)
    model = rec.model.eval()
    vecs = torch.from_numpy(clustered_vectors())
    before = model.item_table()
    rec.add_item(5, vector=vecs[2].numpy())  # the vector of warm item 3 (row i + 1)
    plain = model.item_table()[5]
    id3 = model.id_emb.weight[3]  # type: ignore[union-attr]
    torch.testing.assert_close(model.item_table(neighbors=1)[5], plain + id3)
    warm = model.has_id.nonzero().squeeze(-1)
    sims = torch.nn.functional.cosine_similarity(model.vectors[warm], vecs[2][None]).clamp(min=0)
    top = sims.topk(3)
    w = top.values / top.values.sum()
    mean3 = (w[:, None] * model.id_emb.weight[warm[top.indices]]).sum(0)  # type: ignore[union-attr]
    torch.testing.assert_close(model.item_table(neighbors=3)[5], plain + mean3)
    torch.testing.assert_close(model.item_table(neighbors=3)[:5], before[:5])
    rec.stand_in_neighbors = 1
    rec.reset_item_table()
    torch.testing.assert_close(rec.item_table()[5], plain + id3)


def test_with_drop_neighbors_an_id_dropped_item_trains_with_its_neighbours_id_part() -> None:
    """``drop_neighbors``: in training, an item whose id part is dropped gets its nearest other
    warm item's id part (detached), as a new item is served with ``neighbors=1``; the others
    keep their own."""
    import dataclasses

    from models.recall.sidrec import SIDRec

    rec = tiny_sidrec(content=True)
    cfg = dataclasses.replace(rec.model.cfg, drop_neighbors=1)
    model = SIDRec(cfg)
    model.load_state_dict(rec.model.state_dict())
    model.add_items(torch.arange(1, rec.model.n_rows), rec.model.codes[1:], trained=True,
                    vectors=rec.model.vectors[1:])
    model.train()
    mask = torch.ones(model.n_rows, dtype=torch.bool)
    mask[3] = False  # item 3 loses its id part in this batch
    table = model.item_table(mask)
    rec.model.train()  # the same weights without drop_neighbors: codes + vectors, no id parts
    plain = rec.model.item_table(torch.zeros(model.n_rows, dtype=torch.bool)).detach()
    warm = model.has_id.nonzero().squeeze(-1)
    sims = torch.nn.functional.cosine_similarity(model.vectors[warm], model.vectors[3][None])
    sims[warm == 3] = -2.0
    nearest = int(warm[sims.argmax()])
    ids = model.id_emb.weight  # type: ignore[union-attr]
    torch.testing.assert_close(table[3], plain[3] + ids[nearest])
    torch.testing.assert_close(table[4], plain[4] + ids[4])
    table[3].sum().backward()
    assert ids.grad is not None and not ids.grad[nearest].any()  # not learned through
