"""Train the SASRec-CE baseline (``models/recall/sasrec.py``) by a fixed number of epochs.

Training sees ``items[:-2]`` of every user, in windows of ``max_len + 1`` items, with
full-softmax cross-entropy on every position. Every ``eval_every`` epochs a fixed validation
sample is scored (Recall@10, history kept); the best weights are kept and training stops after
``patience`` evaluations without improvement: the epoch count, not the wall clock, decides the
model, so it is the same on a slower machine.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from models.data.dataset import SeqDataset
from models.recall.data import leave_one_out, sample_split, train_windows
from models.recall.evaluate import evaluate, format_metrics, rank_metrics, recaller_ranking
from models.recall.lr_schedule import make_schedule
from models.recall.sasrec import SASRec, SASRecConfig, SASRecRecaller, left_pad
from models.recall.stopping import BestOnValidation

log = logging.getLogger(__name__)


@dataclass
class SASRecTrainConfig:
    model: dict[str, Any] = field(default_factory=dict)  # SASRecConfig overrides
    epochs: int = 200  # at most; early stopping on validation usually ends it sooner
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_schedule: str = "constant"  # or "cosine": decay to 0 over ``epochs`` (lr_schedule.py)
    warmup_epochs: float = 0.0  # linear warm-up before the cosine decay
    eval_every: int = 5  # epochs
    eval_users: int = 0  # validation sample for early stopping (0: all users)
    patience: int = 4  # evaluations without improvement before stopping
    max_hist: int = 20
    seed: int = 0


def _windows(ds: SeqDataset, max_hist: int, n_items: int) -> torch.Tensor:
    """[W, max_hist + 1] left-padded training windows."""
    return left_pad(train_windows(ds, max_hist + 1), max_hist + 1, n_items)


def _epoch(model: SASRec, opt: torch.optim.Optimizer, data: torch.Tensor, batch_size: int,
           rng: np.random.Generator, progress: bool, desc: str,
           sched: torch.optim.lr_scheduler.LRScheduler | None = None) -> float:
    model.train()
    order = torch.from_numpy(rng.permutation(len(data)))
    losses = []
    bar = tqdm(range(0, len(data), batch_size), desc=desc, disable=not progress,
               mininterval=2.0)
    for s in bar:
        batch = data[order[s: s + batch_size]]
        inp, tgt = batch[:, :-1], batch[:, 1:]
        keep = (inp > 0) & (tgt > 0)
        logits = model.logits(model(inp)[keep])
        loss = F.cross_entropy(logits, tgt[keep])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        losses.append(loss.item())
    return float(np.mean(losses)) if losses else 0.0


def fit_sasrec(ds: SeqDataset, cfg: SASRecTrainConfig, progress: bool = True
               ) -> tuple[SASRecRecaller, dict[str, Any]]:
    """A trained recaller (best validation epoch) and its training history."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    # every item of the sequences has an entry (load_dataset adds the ones without metadata)
    n_items = max(ds.items, default=0)
    data = _windows(ds, cfg.max_hist, n_items)
    model = SASRec(SASRecConfig(n_items=n_items, max_len=cfg.max_hist, **cfg.model))
    rec = SASRecRecaller(model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98),
                           weight_decay=cfg.weight_decay)
    valid = sample_split(leave_one_out(ds, "valid", cfg.max_hist), cfg.eval_users, cfg.seed)
    best = BestOnValidation(cfg.patience)
    history, t0 = [], time.time()
    steps = -(-len(data) // cfg.batch_size)
    sched = make_schedule(opt, cfg.lr_schedule, cfg.epochs * steps,
                          round(cfg.warmup_epochs * steps))
    for epoch in range(1, cfg.epochs + 1):
        loss = _epoch(model, opt, data, cfg.batch_size, rng, progress, f"epoch {epoch}", sched)
        if epoch % cfg.eval_every and epoch != cfg.epochs:
            continue
        model.eval()
        m = rank_metrics(recaller_ranking(rec, valid, 10, 0, False, batch_size=256,
                                          progress=False), valid.targets)
        history.append({"epoch": epoch, "loss": loss, "lr": opt.param_groups[0]["lr"],
                        "minutes": round((time.time() - t0) / 60, 2), **m})
        log.info("epoch %d loss %.4f valid R@10 %.4f N@10 %.4f (%.1f min)", epoch, loss,
                 m["recall@10"], m["ndcg@10"], (time.time() - t0) / 60)
        if best.update(epoch, m["recall@10"], model):
            break
    best.restore(model)
    model.eval()
    return rec, {"history": history, "best_epoch": best.epoch,
                 "epochs_run": history[-1]["epoch"] if history else 0,
                 "best_valid_recall@10": best.score,
                 "train_minutes": round((time.time() - t0) / 60, 2)}


def run_train_sasrec(ds: SeqDataset, out_root: Path, cfg: SASRecTrainConfig,
                     test: bool = True) -> Path:
    """Train, evaluate on the test split (both protocol variants) and save the artifact."""
    rec, info = fit_sasrec(ds, cfg)
    metrics: dict[str, Any] = {"train": info}
    if test:
        res = evaluate(rec, ds, leave_one_out(ds, "test", cfg.max_hist), "test", beam=0)
        print(format_metrics(res))
        metrics["eval_test"] = res
    path = rec.save(out_root, ds.data_hash(), {"train": asdict(cfg)}, metrics)
    t = metrics.get("eval_test", {}).get("sidstream/all", {})
    log.info("sasrec: best epoch %d of %d, %.1f min, test R@10 %s -> %s", info["best_epoch"],
             info["epochs_run"], info["train_minutes"], t.get("recall@10", "-"), path)
    return path
