"""Ranker model: shapes, masking of short / empty histories and padded candidates, the loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from export.onnx_export import random_inputs, random_serving_inputs, torch_scores
from models.rank.features import model_inputs
from models.rank.model import Ranker, RankerConfig, ServingRanker, TargetAttention, esmm_loss

torch.set_num_threads(1)


def small_config(**kw: int) -> RankerConfig:
    base = dict(n_items=50, n_categories=7, n_brands=9, n_price_buckets=4, d=16, hidden=16,
                max_hist=6)
    base.update(kw)
    return RankerConfig(**base)  # type: ignore[arg-type]


@pytest.fixture()
def model() -> Ranker:
    torch.manual_seed(0)
    return Ranker(small_config(n_sid_levels=3, sid_vocab=5)).eval()


@pytest.mark.parametrize(("users", "cands"), [(1, 1), (4, 9), (13, 2)])
def test_output_shapes_and_ranges(model: Ranker, users: int, cands: int) -> None:
    inputs = random_inputs(model, users, cands, seed=users)
    pctr, pcvr, pctcvr = torch_scores(model, inputs)
    for p in (pctr, pcvr, pctcvr):
        assert p.shape == (users, cands)
        assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    np.testing.assert_allclose(pctcvr, pctr * pcvr, rtol=1e-6)


def test_sid_features_optional() -> None:
    m = Ranker(small_config(n_sid_levels=0)).eval()
    assert m.cfg.n_fields == 4
    pctr, _, _ = torch_scores(m, random_inputs(m, 3, 5))
    assert pctr.shape == (3, 5)


def test_empty_history_is_finite_and_reads_out_zero(model: Ranker) -> None:
    inputs = random_inputs(model, 5, 7, empty_users=5)
    assert (inputs.hist_feats == 0).all()
    outs = torch_scores(model, inputs)
    assert all(np.isfinite(o).all() for o in outs)
    attn = model.attn
    cand = torch.randn(2, 3, model.cfg.d)
    hist = torch.randn(2, model.cfg.max_hist, model.cfg.d)
    read = attn(cand, hist, torch.zeros(2, model.cfg.max_hist, dtype=torch.bool))
    assert torch.allclose(read, torch.zeros_like(read), atol=1e-7)


def test_padding_content_is_ignored(model: Ranker) -> None:
    inputs = random_inputs(model, 4, 6, seed=3)
    pad = inputs.hist_feats[..., 0] == 0
    assert pad.any(), "the random inputs should hold some padding"
    noisy = inputs.hist_feats.copy()
    noisy[pad, 1:] = 1  # side features at padding positions (id 0 = padding) must not matter
    events = inputs.hist_events.copy()
    events[pad] = 2
    a = torch_scores(model, inputs)
    b = torch_scores(model, inputs._replace(hist_feats=noisy, hist_events=events))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-6)


def test_padded_candidates_score_zero_and_users_are_independent(model: Ranker) -> None:
    inputs = random_inputs(model, 3, 5, seed=4)
    cand = inputs.cand_feats.copy()
    cand[1, 3:] = 0
    pctr, pcvr, _ = torch_scores(model, inputs._replace(cand_feats=cand))
    assert (pctr[1, 3:] == 0).all() and (pcvr[1, 3:] == 0).all()
    alone = torch_scores(model, type(inputs)(*(a[:1] for a in inputs)))
    np.testing.assert_allclose(alone[0][0], torch_scores(model, inputs)[0][0], atol=1e-6)


def test_target_attention_prefers_matching_history() -> None:
    torch.manual_seed(0)
    attn = TargetAttention(small_config())
    with torch.no_grad():
        attn.k.weight.copy_(torch.eye(16) * 4)
        attn.v.weight.copy_(torch.eye(16))
    hist = torch.eye(16)[:6].unsqueeze(0)  # six orthogonal history items
    cand = hist[:, 2:3]  # the candidate equals history item 2
    read = attn(cand, hist, torch.ones(1, 6, dtype=torch.bool))[0, 0]
    assert int(read.argmax()) == 2


def test_esmm_loss_is_finite_for_extreme_logits() -> None:
    ctr = torch.tensor([[40.0, -40.0, 0.0]], requires_grad=True)
    cvr = torch.tensor([[40.0, 40.0, -40.0]], requires_grad=True)
    click = torch.tensor([[1.0, 0.0, 1.0]])
    order = torch.tensor([[1.0, 0.0, 0.0]])
    l_ctr, l_ctcvr = esmm_loss(ctr, cvr, click, order, torch.ones(1, 3))
    (l_ctr + l_ctcvr).backward()
    assert torch.isfinite(l_ctr) and torch.isfinite(l_ctcvr)
    assert ctr.grad is not None and torch.isfinite(ctr.grad).all()
    assert cvr.grad is not None and torch.isfinite(cvr.grad).all()
    # zero weight removes a candidate from the loss
    w = torch.tensor([[1.0, 1.0, 0.0]])
    l2, _ = esmm_loss(ctr.detach(), cvr.detach(), click, order, w)
    l_first_two, _ = esmm_loss(ctr.detach()[:, :2], cvr.detach()[:, :2], click[:, :2],
                               order[:, :2], torch.ones(1, 2))
    assert torch.allclose(l2, l_first_two)


@pytest.mark.parametrize(("users", "cands", "rows"), [(1, 1, 0), (6, 9, 0), (20, 4, 12)])
def test_serving_graph_matches_host_gather_and_context(model: Ranker, users: int, cands: int,
                                                       rows: int) -> None:
    """In-graph gather (clip to padding / sentinel) and context == the numpy training path."""
    inputs = random_serving_inputs(model, users, cands, seed=users, empty_users=1, n_rows=rows)
    with torch.inference_mode():
        got = ServingRanker(model)(*(torch.from_numpy(a) for a in inputs))
    host = model_inputs(inputs)
    assert (host.hist_feats[0] == 0).all()  # the empty history
    for g, w in zip(got, torch_scores(model, host), strict=True):
        np.testing.assert_allclose(g.numpy(), w, atol=1e-6)
