"""Train the generative recall model on SID sequences; early-stop on validation Recall@10.

Training sees ``items[:-2]`` of every user (windows of at most ``max_hist + 1`` items) with
next-token cross-entropy on every position; every ``eval_every`` epochs a fixed sample of
``eval_users`` users is scored on the validation split by constrained beam search; the best
weights are kept, the test split is evaluated on all users, and a recall artifact is written.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from models.data.dataset import SeqDataset
from models.recall.data import Split, leave_one_out, sample_split, train_batches, train_windows
from models.recall.evaluate import evaluate, format_metrics, rank_metrics, recaller_ranking
from models.recall.model import SIDGPT, GenConfig, TokenBatch
from models.recall.recaller import GenerativeRecaller
from models.sid.tokenizer import load_tokenizer

log = logging.getLogger(__name__)


@dataclass
class RecallTrainConfig:
    gen: GenConfig = field(default_factory=GenConfig)
    id_embedding: bool = True  # item-id embedding on history items (see models/recall/model.py)
    epochs: int = 60  # cosine schedule length; training may stop earlier
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup_steps: int = 300
    max_minutes: float = 40.0  # wall budget of the training loop (evaluation included)
    # after epoch 1, shorten the cosine schedule to the epochs that fit in ``max_minutes``, so
    # the learning rate anneals fully instead of being cut off mid-schedule by the time cap
    fit_schedule: bool = True
    item_weights: tuple[float, ...] = (0.5, 1.0, 2.0)  # rerank weights tried on validation
    steers: tuple[float, ...] = (0.0, 1.0, 2.0)  # beam look-ahead weights tried on validation
    eval_every: int = 2  # epochs
    eval_users: int = 3000  # validation sample for early stopping (0: all users)
    patience: int = 4  # evaluations without improvement before stopping
    beam: int = 20
    max_hist: int = 20
    seed: int = 0


def _lr_at(step: int, total: int, cfg: RecallTrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    frac = min((step - cfg.warmup_steps) / max(total - cfg.warmup_steps, 1), 1.0)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))


def validation_sample(ds: SeqDataset, cfg: RecallTrainConfig) -> Split:
    """The fixed validation sample for early stopping and decoding tuning."""
    return sample_split(leave_one_out(ds, "valid", cfg.max_hist), cfg.eval_users, cfg.seed)


def build_model(table_vocab: tuple[int, ...], n_rows: int, cfg: RecallTrainConfig) -> SIDGPT:
    gcfg = replace(cfg.gen, vocab_sizes=table_vocab, max_items=cfg.max_hist + 1,
                   n_items=n_rows if cfg.id_embedding else 0,
                   item_loss=cfg.gen.item_loss if cfg.id_embedding else 0.0)
    return SIDGPT(gcfg)


def _train_epoch(model: SIDGPT, opt: torch.optim.Optimizer, batches: Iterator[TokenBatch],
                 n_batches: int, step: int, total: int, cfg: RecallTrainConfig, desc: str,
                 progress: bool) -> tuple[float, int]:
    """One pass of teacher-forced training; returns the mean loss and the new step count."""
    model.train()
    losses = []
    bar = tqdm(batches, total=n_batches, desc=desc, disable=not progress, mininterval=2.0)
    for batch in bar:
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, total, cfg)
        loss = model.loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
    return float(np.mean(losses)), step


def fit(rec: GenerativeRecaller, ds: SeqDataset, cfg: RecallTrainConfig, progress: bool = True
        ) -> dict[str, Any]:
    """Train ``rec.model`` in place (best validation weights restored); returns a history."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = rec.model
    seqs = [rec.tokens.rows(w) for w in train_windows(ds, cfg.max_hist + 1)]
    valid = validation_sample(ds, cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            betas=(0.9, 0.98))
    per_epoch = math.ceil(len(seqs) / cfg.batch_size)
    last_epoch = cfg.epochs
    total, step, t0 = cfg.epochs * per_epoch, 0, time.time()
    best: dict[str, Any] = {"recall@10": -1.0, "epoch": 0, "state": None}
    history, bad = [], 0
    for epoch in range(1, cfg.epochs + 1):
        batches = train_batches(seqs, rec.tokens, model.cfg, cfg.batch_size, rng)
        loss, step = _train_epoch(model, opt, batches, per_epoch, step, total, cfg,
                                  f"epoch {epoch}", progress)
        minutes = (time.time() - t0) / 60
        if epoch == 1 and cfg.fit_schedule:
            last_epoch = _planned_epochs(minutes, cfg)
            total = last_epoch * per_epoch
            log.info("epoch 1 took %.2f min: cosine schedule over %d epochs", minutes, last_epoch)
        # the next epoch (and its evaluation) would overrun the budget
        out_of_time = minutes + minutes / epoch >= cfg.max_minutes or epoch >= last_epoch
        if epoch % cfg.eval_every and not out_of_time:
            continue
        model.eval()
        m = rank_metrics(recaller_ranking(rec, valid, 10, cfg.beam, False, progress=False),
                         valid.targets)
        history.append({"epoch": epoch, "loss": loss, "minutes": round(minutes, 2), **m})
        log.info("epoch %d loss %.4f valid R@10 %.4f N@10 %.4f (%.1f min)", epoch, loss,
                 m["recall@10"], m["ndcg@10"], minutes)
        if m["recall@10"] > best["recall@10"]:
            best = {"recall@10": m["recall@10"], "epoch": epoch,
                    "state": copy.deepcopy(model.state_dict())}
            bad = 0
        else:
            bad += 1
        if bad >= cfg.patience or out_of_time:
            break
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    model.eval()
    out = {"history": history, "best_epoch": best["epoch"],
           "best_valid_recall@10": best["recall@10"], "train_minutes": (time.time() - t0) / 60}
    if model.has_item_head and cfg.item_weights:
        out["item_weight"], out["steer"] = tune_decoding(rec, valid, cfg)
    return out


def _planned_epochs(epoch_minutes: float, cfg: RecallTrainConfig) -> int:
    # evaluations every ``eval_every`` epochs cost about a tenth of an epoch each
    per_epoch = epoch_minutes * (1 + 0.1 / cfg.eval_every)
    return max(1, min(cfg.epochs, int(cfg.max_minutes / per_epoch)))


def tune_decoding(rec: GenerativeRecaller, valid: Split, cfg: RecallTrainConfig
                  ) -> tuple[float, float]:
    """Pick the item-head rerank weight and the beam look-ahead weight on the validation
    sample (sets ``rec.rerank`` and ``rec.steer``); ties go to the smaller change from 1 / 0."""
    scores = {}
    for w in cfg.item_weights:
        for steer in cfg.steers:
            rec.rerank, rec.steer = w, steer
            ranking = recaller_ranking(rec, valid, 10, cfg.beam, False, progress=False)
            scores[(w, steer)] = rank_metrics(ranking, valid.targets)["recall@10"]
    rec.rerank, rec.steer = max(scores, key=lambda ws: (scores[ws], -abs(ws[0] - 1.0), -ws[1]))
    log.info("decoding: item weight %.2f, look-ahead %.2f (valid R@10 by (weight, look-ahead): "
             "%s)", rec.rerank, rec.steer,
             ", ".join(f"{w:g}/{st:g}: {r:.4f}" for (w, st), r in scores.items()))
    return rec.rerank, rec.steer


def run_train_recall(ds: SeqDataset, tokenizer: Path, out_root: Path, cfg: RecallTrainConfig,
                     progress: bool = True, test: bool = True) -> Path:
    """Tokenizer artifact + data -> trained recaller -> test metrics -> recall artifact."""
    rqvae, table, tok_cfg = load_tokenizer(tokenizer)
    model = build_model(table.vocab_sizes, len(table.sids) + 1, cfg)
    log.info("generative model: %.2fM parameters", sum(p.numel() for p in model.parameters())
             / 1e6)
    rec = GenerativeRecaller(rqvae, table, model, max_hist=cfg.max_hist)
    fit_out = fit(rec, ds, cfg, progress)
    metrics: dict[str, Any] = {**fit_out, "sid": table.stats()}
    if test:
        t0 = time.time()
        res = evaluate(rec, ds, leave_one_out(ds, "test", cfg.max_hist), "test", cfg.beam,
                       progress=progress)
        res["eval_seconds"] = round(time.time() - t0, 1)
        log.info("%s", format_metrics(res))
        metrics["test"] = res
    config = {"train": {k: v for k, v in asdict(cfg).items() if k != "gen"},
              "tokenizer": tok_cfg, "item_weight": rec.rerank, "steer": rec.steer}
    return rec.save(out_root, ds.data_hash(), config, metrics)
