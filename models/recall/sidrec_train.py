"""Train SIDRec (``models/recall/sidrec.py``) by a number of epochs, then choose its decoding.

Training sees ``items[:-2]`` of every user, in windows of ``max_len + 1`` items, with both
heads' losses on every position. Every ``eval_every`` epochs the whole validation split is
scored by the item head (the encoder's quality; the SID head reads the same states); the best
weights are kept and training stops after ``patience`` evaluations without improvement:
epochs, not the wall clock, decide the model. Then the serving mode and SID weight are chosen
on validation (``tune_decoding``).

Cold items (``cold_items`` > 0): a seeded share of the catalogue is held out of training
entirely (removed from the training sequences, the SID table, the trie and the item table); the
evaluation adds them back through the catalogue path, ``SIDRecRecaller.add_item``.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from models.artifacts import load_manifest, update_metrics
from models.data.dataset import SeqDataset
from models.data.timeline import before_window
from models.recall.data import Split, leave_one_out, sample_split, train_windows
from models.recall.ema import WeightAverage
from models.recall.evaluate import rank_metrics, recaller_ranking
from models.recall.lr_schedule import make_schedule
from models.recall.sasrec import left_pad
from models.recall.sidrec import SeqBatch, SIDRec, SIDRecConfig
from models.recall.sidrec_eval import ablation, cold_items
from models.recall.sidrec_recaller import SIDRecRecaller
from models.recall.sidrec_stand_in import fit_stand_in
from models.recall.stopping import BestOnValidation
from models.sid.rqvae import RQVAE
from models.sid.table import SidTable
from models.sid.tokenizer import load_item_vectors, load_tokenizer

log = logging.getLogger(__name__)


@dataclass
class SIDRecTrainConfig:
    model: dict[str, Any] = field(default_factory=dict)  # SIDRecConfig overrides
    epochs: int = 200  # at most; early stopping on validation usually ends it sooner
    batch_size: int = 128
    lr: float = 1e-3
    lr_schedule: str = "constant"  # or "cosine": decay to 0 over ``epochs`` (lr_schedule.py)
    warmup_epochs: float = 0.0  # linear warm-up before the cosine decay
    eval_every: int = 5  # epochs
    eval_users: int = 0  # validation users scored for early stopping (0: all)
    patience: int = 4  # evaluations without improvement before stopping
    beam: int = 20
    weights: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)  # hybrid SID weights tried on validation
    max_hist: int = 20
    cold_items: float = 0.0  # share of the catalogue held out of training
    holdout_events: int = 0  # train on the data before its last N interactions (replay order):
    # a promotion gate then judges the model on events it never saw (models/data/timeline.py)
    content: bool = True  # embed items by the tokenizer's vectors too (SIDRecConfig.content_dim)
    ema_epochs: float = 0.0  # >0: evaluate and keep a moving average of the weights over about
    # this many epochs of steps (models/recall/ema.py); 0: the weights as trained
    seed: int = 0


def held_out_items(ds: SeqDataset, share: float, seed: int) -> set[int]:
    """A seeded random ``share`` of the catalogue (at least one item when ``share`` > 0)."""
    if share <= 0:
        return set()
    items = np.array(sorted(ds.items), np.int64)
    n = max(1, round(share * len(items)))
    return set(np.random.default_rng(seed).choice(items, n, replace=False).tolist())


def training_windows(ds: SeqDataset, max_hist: int, held_out: set[int]) -> torch.Tensor:
    """[W, max_hist + 1] left-padded windows of ``items[:-2]`` without held-out items."""
    wins = [[i for i in w if i not in held_out] for w in train_windows(ds, max_hist + 1)]
    n_items = max(ds.items, default=0)
    return left_pad([w for w in wins if len(w) > 1], max_hist + 1, n_items)


def build_recaller(rqvae: RQVAE, table: SidTable, n_items: int, cfg: SIDRecTrainConfig,
                   held_out: set[int], vectors: dict[int, np.ndarray] | None = None
                   ) -> SIDRecRecaller:
    """An untrained model whose catalogue is the table's items minus ``held_out``
    (``vectors``: the tokenizer's item vectors, needed with ``cfg.content``)."""
    warm = SidTable(table.n_levels, table.codebook_size, table.dup_vocab, moved=table.moved)
    for item, sid in table.sids.items():
        if item not in held_out:
            warm.put(item, sid)
    extra: dict[str, Any] = {}
    if cfg.content:
        if not vectors:
            raise ValueError("content: the tokenizer's item vectors are needed")
        extra["content_dim"] = len(next(iter(vectors.values())))
    model = SIDRec(SIDRecConfig(vocab_sizes=table.vocab_sizes, n_items=n_items,
                                max_len=cfg.max_hist, **{**cfg.model, **extra}))
    rows = torch.tensor(sorted(warm.sids), dtype=torch.long)
    vecs = torch.from_numpy(np.stack([vectors[int(i)] for i in rows])) if cfg.content and \
        vectors else None
    model.add_items(rows, torch.from_numpy(warm.array(rows.numpy())), trained=True, vectors=vecs)
    return SIDRecRecaller(rqvae, warm, model)


def _epoch(model: SIDRec, opt: torch.optim.Optimizer, data: torch.Tensor, batch_size: int,
           rng: np.random.Generator, progress: bool, desc: str,
           avg: WeightAverage | None = None,
           sched: torch.optim.lr_scheduler.LRScheduler | None = None) -> dict[str, float]:
    model.train()
    order = torch.from_numpy(rng.permutation(len(data)))
    parts: dict[str, list[float]] = {"loss": [], "item": [], "sid": []}
    bar = tqdm(range(0, len(data), batch_size), desc=desc, disable=not progress,
               mininterval=2.0)
    for s in bar:
        batch = data[order[s: s + batch_size]]
        loss, part = model.loss(SeqBatch(batch[:, :-1], batch[:, 1:]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        if avg is not None:
            avg.update(model)
        for key, val in (("loss", loss.item()), *part.items()):
            parts[key].append(val)
    return {key: float(np.mean(v)) if v else 0.0 for key, v in parts.items()}


def _score(rec: SIDRecRecaller, valid: Split, beam: int) -> dict[str, float]:
    rec.model.eval()
    rec.reset_item_table()  # the weights changed since the last evaluation
    return rank_metrics(recaller_ranking(rec, valid, 10, beam, False, batch_size=256,
                                         progress=False), valid.targets)


def fit_sidrec(rec: SIDRecRecaller, ds: SeqDataset, cfg: SIDRecTrainConfig, held_out: set[int],
               progress: bool = True) -> dict[str, Any]:
    """Train ``rec.model`` in place (best validation weights restored); returns a history."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = rec.model
    data = training_windows(ds, cfg.max_hist, held_out)
    valid = sample_split(leave_one_out(ds, "valid", cfg.max_hist), cfg.eval_users, cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98))
    best = BestOnValidation(cfg.patience)
    history, t0 = [], time.time()
    rec.mode, rec.weight = "item", 0.0
    steps = -(-len(data) // cfg.batch_size)
    avg = WeightAverage(model, cfg.ema_epochs * steps) if cfg.ema_epochs > 0 else None
    sched = make_schedule(opt, cfg.lr_schedule, cfg.epochs * steps,
                          round(cfg.warmup_epochs * steps))
    for epoch in range(1, cfg.epochs + 1):
        parts = _epoch(model, opt, data, cfg.batch_size, rng, progress, f"epoch {epoch}", avg,
                       sched)
        if epoch % cfg.eval_every and epoch != cfg.epochs:
            continue
        with avg.applied(model) if avg is not None else nullcontext():
            m = _score(rec, valid, cfg.beam)
            stop = best.update(epoch, m["recall@10"], model)
        minutes = (time.time() - t0) / 60
        history.append({"epoch": epoch, **parts, "lr": opt.param_groups[0]["lr"],
                        "minutes": round(minutes, 2), **m})
        log.info("epoch %d loss %.4f (item %.3f, sid %.3f) valid R@10 %.4f N@10 %.4f "
                 "(%.1f min)", epoch, parts["loss"], parts["item"], parts["sid"],
                 m["recall@10"], m["ndcg@10"], minutes)
        if stop:
            break
    best.restore(model)
    model.eval()
    out: dict[str, Any] = {"history": history, "best_epoch": best.epoch,
           "epochs_run": history[-1]["epoch"] if history else 0,
           "best_valid_recall@10": best.score,
           "train_minutes": round((time.time() - t0) / 60, 2)}
    if model.cfg.id_stand_in and model.id_emb is not None:
        out["stand_in"] = fit_stand_in(model)
        rec.reset_item_table()
    out["decoding"] = tune_decoding(rec, valid, cfg)
    return out


def tune_decoding(rec: SIDRecRecaller, valid: Split, cfg: SIDRecTrainConfig
                  ) -> dict[str, Any]:
    """Choose the serving mode (and hybrid SID weight) by validation R@10; sets them on
    ``rec`` and returns every candidate's figures (ties go to the cheaper mode)."""
    tried: list[tuple[str, float, dict[str, float]]] = []
    for mode, weight in [("beam", 0.0), ("item", 0.0), *(("hybrid", w) for w in cfg.weights)]:
        rec.mode, rec.weight = mode, weight
        tried.append((mode, weight, _score(rec, valid, cfg.beam)))
    cost = {"beam": 0, "item": 1, "hybrid": 2}
    mode, weight, _ = max(tried, key=lambda t: (round(t[2]["recall@10"], 6), -cost[t[0]]))
    rec.mode, rec.weight = mode, weight
    log.info("decoding: %s, weight %.2f (valid R@10: %s)", mode, weight,
             ", ".join(f"{m}/{w:g} {r['recall@10']:.4f}" for m, w, r in tried))
    return {"mode": mode, "weight": weight,
            "tried": [{"mode": m, "weight": w, **r} for m, w, r in tried]}


def run_train_sidrec(ds: SeqDataset, tokenizer: Path, out_root: Path, cfg: SIDRecTrainConfig,
                     progress: bool = True, test: bool = True) -> Path:
    """Tokenizer artifact + data -> trained SIDRec -> test ablation (and cold items) ->
    artifact. With ``cold_items`` the artifact is saved before the held-out items are added,
    so it is the model that never saw them."""
    t0 = time.time()
    ds = before_window(ds, cfg.holdout_events)
    rqvae, table, tok_cfg = load_tokenizer(tokenizer)
    held_out = held_out_items(ds, cfg.cold_items, cfg.seed)
    vectors = load_item_vectors(tokenizer) if cfg.content else None
    rec = build_recaller(rqvae, table, max(ds.items, default=0), cfg, held_out, vectors)
    log.info("sidrec: %.2fM parameters, %d items (%d held out)",
             sum(p.numel() for p in rec.model.parameters()) / 1e6, rec.n_items, len(held_out))
    metrics: dict[str, Any] = {"train": fit_sidrec(rec, ds, cfg, held_out, progress)}
    test_split = leave_one_out(ds, "test", cfg.max_hist)
    if test:
        tried = [t for t in metrics["train"]["decoding"]["tried"] if t["mode"] == "hybrid"]
        best_w = max(tried, key=lambda t: t["recall@10"])["weight"] if tried else 1.0
        metrics["test"] = ablation(rec, test_split, cfg.beam, best_w)
    config = {"train": asdict(cfg), "tokenizer": tok_cfg,
              "held_out": sorted(held_out)}
    path = rec.save(out_root, ds.data_hash(), config, metrics)
    if test and held_out:
        valid = leave_one_out(ds, "valid", cfg.max_hist)
        metrics["cold_items"] = cold_items(rec, ds, valid, test_split, held_out, cfg.beam)
        update_metrics(path, {"cold_items": metrics["cold_items"]})
    tok_s = load_manifest(tokenizer, kind="tokenizer").metrics.get("wall_s", 0.0)
    metrics["recipe_minutes"] = round(tok_s / 60 + (time.time() - t0) / 60, 2)
    update_metrics(path, {"recipe_minutes": metrics["recipe_minutes"]})
    served = metrics.get("test", {}).get(rec.mode, {}).get("all", {})
    log.info("sidrec: best epoch %d of %d, %.1f min with the tokenizer, served %s (weight %g), "
             "test R@10 %s N@10 %s -> %s", metrics["train"]["best_epoch"],
             metrics["train"]["epochs_run"], metrics["recipe_minutes"], rec.mode, rec.weight,
             served.get("recall@10", "-"), served.get("ndcg@10", "-"), path)
    return path
