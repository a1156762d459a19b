"""Train the ranker (ESMM losses, fresh negatives every epoch) and evaluate it by AUC / GAUC."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
from tqdm import tqdm

from models.data.dataset import SeqDataset
from models.rank.data import (
    Corpus,
    CoVisit,
    DataConfig,
    Examples,
    LabelRule,
    RankerBatch,
    build_corpus,
    eval_negatives,
    make_batch,
    split,
    train_negatives,
)
from models.rank.features import N_CONTEXT, N_EVENT_TYPES, ItemFeatures
from models.rank.metrics import auc, gauc
from models.rank.model import Ranker, RankerConfig, esmm_loss

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    epochs: int = 8  # the epoch with the best validation GAUC is kept
    batch_size: int = 512  # examples (users) per step, each with 1 + n_hard + n_random candidates
    lr: float = 3e-3
    weight_decay: float = 1e-5
    id_dropout: float = 0.1  # share of item ids replaced by the unknown-item row (cold start)
    ctcvr_weight: float = 1.0  # weight of the CTCVR loss beside the CTR loss
    max_minutes: float = 0.0  # stop training after this long (0: no limit)
    eval_users: int = 4000  # validation users scored after each epoch (0: all)
    seed: int = 0


@dataclass
class RankerData:
    """Everything training and evaluation need, built once from a data set."""

    name: str
    data_hash: str
    rule: LabelRule
    corpus: Corpus
    train: Examples
    valid: Examples
    test: Examples
    covisit: CoVisit
    features: ItemFeatures
    cfg: DataConfig


@dataclass
class TrainResult:
    model: Ranker
    metrics: dict[str, dict[str, float]]
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch
    seconds: float = 0.0


class TorchBatch(NamedTuple):
    hist_feats: torch.Tensor
    hist_events: torch.Tensor
    context: torch.Tensor
    cand_feats: torch.Tensor
    click: torch.Tensor
    order: torch.Tensor


def prepare_data(ds: SeqDataset, cfg: DataConfig, rule: LabelRule | None = None,
                 item_sid: np.ndarray | None = None) -> RankerData:
    rule = rule or LabelRule.auto(ds)
    corpus = build_corpus(ds, rule)
    train, valid, test = split(corpus)
    features = ItemFeatures.from_dataset(ds, item_sid)
    covisit = CoVisit(corpus, train, features.n_trained_items, cfg)
    log.info("%s: %d train / %d valid / %d test examples, label rule %s, order rate %.3f",
             ds.name, len(train.pos), len(valid.pos), len(test.pos), rule.value,
             float(corpus.order[train.pos].mean()) if len(train.pos) else 0.0)
    return RankerData(ds.name, ds.data_hash(), rule, corpus, train, valid, test, covisit,
                      features, cfg)


def model_config(features: ItemFeatures, max_hist: int, **overrides: Any) -> RankerConfig:
    """A RankerConfig sized for ``features``; ``overrides`` set the width etc."""
    return RankerConfig(n_items=features.n_trained_items, n_categories=len(features.categories) + 1,
                        n_brands=len(features.brands) + 1,
                        n_price_buckets=features.n_price_buckets,
                        n_sid_levels=features.n_sid_levels, sid_vocab=features.sid_vocab,
                        n_event_types=N_EVENT_TYPES, n_context=N_CONTEXT, max_hist=max_hist,
                        **overrides)


def to_torch(b: RankerBatch) -> TorchBatch:
    return TorchBatch(*(torch.from_numpy(np.ascontiguousarray(a)) for a in (
        b.hist_feats, b.hist_events, b.context, b.cand_feats, b.click, b.order)))


def id_dropout(b: RankerBatch, unknown_id: int, p: float, rng: np.random.Generator) -> RankerBatch:
    """Replace a share ``p`` of (non-padding) item ids by the unknown-item row."""
    if p <= 0:
        return b
    hist, cand = b.hist_feats.copy(), b.cand_feats.copy()
    for feats in (hist, cand):
        ids = feats[..., 0]
        ids[(ids > 0) & (rng.random(ids.shape) < p)] = unknown_id
    return b._replace(hist_feats=hist, cand_feats=cand)


def train_step(model: Ranker, opt: torch.optim.Optimizer, b: TorchBatch, ctcvr_weight: float
               ) -> float:
    ctr, cvr = model.logits(b.hist_feats, b.hist_events, b.context, b.cand_feats)
    weight = (b.cand_feats[..., 0] > 0).float()
    l_ctr, l_ctcvr = esmm_loss(ctr, cvr, b.click, b.order, weight)
    loss = l_ctr + ctcvr_weight * l_ctcvr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


@torch.inference_mode()
def predict(model: Ranker, b: RankerBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = to_torch(b)
    pctr, pcvr, pctcvr = model(t.hist_feats, t.hist_events, t.context, t.cand_feats)
    return pctr.numpy(), pcvr.numpy(), pctcvr.numpy()


def evaluate(model: Ranker, data: RankerData, ex: Examples, seed: int = 1234,
             batch_size: int = 1024) -> dict[str, float]:
    """AUC / GAUC of pCTR (click), of pCTCVR (order), and AUC of pCVR among clicked candidates."""
    was_training = model.training
    model.eval()
    negatives = eval_negatives(data.corpus, ex, data.covisit, data.cfg, seed)
    outs: list[tuple[np.ndarray, ...]] = []
    for lo in range(0, len(ex.pos), batch_size):
        sl = slice(lo, lo + batch_size)
        b = make_batch(data.corpus, Examples(ex.user[sl], ex.pos[sl]), negatives[sl],
                       data.features, data.cfg.max_hist)
        outs.append((*predict(model, b), b.click, b.order))
    model.train(was_training)
    pctr, pcvr, pctcvr, click, order = (np.concatenate(x) for x in zip(*outs, strict=True))
    g_ctr, n_ctr = gauc(click, pctr)
    g_ctcvr, n_ctcvr = gauc(order, pctcvr)
    clicked = click > 0.5
    return {"auc_ctr": auc(click, pctr), "gauc_ctr": g_ctr, "users": float(n_ctr),
            "auc_ctcvr": auc(order, pctcvr), "gauc_ctcvr": g_ctcvr,
            "gauc_ctcvr_users": float(n_ctcvr), "auc_cvr_clicked": auc(order[clicked],
                                                                      pcvr[clicked]),
            "candidates_per_user": float(click.shape[1])}


def _subset(ex: Examples, n: int, seed: int) -> Examples:
    if n <= 0 or n >= len(ex.pos):
        return ex
    keep = np.sort(np.random.default_rng(seed).choice(len(ex.pos), n, replace=False))
    return Examples(ex.user[keep], ex.pos[keep])


def train(model: Ranker, data: RankerData, cfg: TrainConfig) -> TrainResult:
    """Train with fresh negatives each epoch; keep the epoch with the best validation GAUC."""
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    valid = _subset(data.valid, cfg.eval_users, cfg.seed)
    t0, deadline = time.monotonic(), cfg.max_minutes * 60 or float("inf")
    best, best_state, losses = -1.0, copy.deepcopy(model.state_dict()), []
    n, bs = len(data.train.pos), cfg.batch_size
    for epoch in range(cfg.epochs):
        model.train()
        perm = rng.permutation(n)
        negs = train_negatives(data.corpus, Examples(data.train.user[perm], data.train.pos[perm]),
                               data.covisit, data.cfg, rng)
        total, steps = 0.0, 0
        bar = tqdm(range(0, n, bs), desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False)
        for lo in bar:
            idx = perm[lo: lo + bs]
            b = make_batch(data.corpus, Examples(data.train.user[idx], data.train.pos[idx]),
                           negs[lo: lo + bs], data.features, data.cfg.max_hist)
            b = id_dropout(b, data.features.unknown_id, cfg.id_dropout, rng)
            total += train_step(model, opt, to_torch(b), cfg.ctcvr_weight)
            steps += 1
            bar.set_postfix(loss=f"{total / steps:.4f}")
            if time.monotonic() - t0 > deadline:
                break
        losses.append(total / max(steps, 1))
        m = evaluate(model, data, valid)
        log.info("epoch %d: train loss %.4f, valid AUC %.4f GAUC %.4f (CTCVR AUC %.4f)",
                 epoch + 1, losses[-1], m["auc_ctr"], m["gauc_ctr"], m["auc_ctcvr"])
        if m["gauc_ctr"] > best:
            best, best_state = m["gauc_ctr"], copy.deepcopy(model.state_dict())
        if time.monotonic() - t0 > deadline:
            log.info("time budget of %.1f min reached", cfg.max_minutes)
            break
    model.load_state_dict(best_state)
    model.eval()
    metrics = {"valid": evaluate(model, data, data.valid), "test": evaluate(model, data, data.test)}
    return TrainResult(model, metrics, losses, time.monotonic() - t0)
