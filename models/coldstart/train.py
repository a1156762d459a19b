"""Training a generative recall model with (or, for comparison, without) profile tokens.

Each training window of a user's sequence (from the user's first item on, windows of
``max_hist + 1`` items) is prefixed with the user's profile codes and the context of the
window's first event (hour bucket, weekday; ``models/data/profile.py``). Decoder-only training
predicts every position at once, so the window's BOS position is the 0-event user (profile
and context only), the next position the 1-event user, and so on: short histories are in
distribution without extra truncation. Profile dropout (each field unknown with probability
``p_field``, a whole profile with ``p_all``, redrawn every epoch) keeps users without a profile,
or with a partial one, in distribution too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
import torch

from models.data.dataset import SeqDataset
from models.data.profile import Profile, ProfileVocab, drop_fields
from models.recall.data import train_batches
from models.recall.model import GenConfig
from models.recall.recaller import GenerativeRecaller
from models.recall.train import RecallTrainConfig, _train_epoch, build_model
from models.sid.rqvae import RQVAE
from models.sid.table import SidTable

log = logging.getLogger(__name__)


@dataclass
class ProfileTrainConfig:
    gen: GenConfig = field(default_factory=lambda: GenConfig(
        d_model=64, n_layers=2, n_heads=2, d_ff=256, dropout=0.1, item_loss=1.0))
    profile: bool = True  # False: the same model without profile tokens
    epochs: int = 8
    batch_size: int = 64
    lr: float = 3e-3
    warmup_steps: int = 100
    max_hist: int = 20
    p_field: float = 0.2  # profile dropout per field
    p_all: float = 0.1  # ... and of a whole profile
    seed: int = 0


class Windows(NamedTuple):
    rows: list[np.ndarray]  # token-table rows of each window's items
    codes: np.ndarray  # [N, F] profile + context codes of each window


def profile_windows(rec: GenerativeRecaller, ds: SeqDataset, users: list[int],
                    vocab: ProfileVocab, profiles: dict[int, Profile], max_items: int
                    ) -> Windows:
    """Non-overlapping windows of each user's sequence from its first item, with codes."""
    rows, codes = [], []
    for user in users:
        seq = ds.sequences[user]
        stamps = ds.timestamps.get(user) if ds.timestamps else None
        for s in range(0, len(seq), max_items):
            r = rec.tokens.rows(seq[s: s + max_items])
            if len(r) < 2:
                continue
            rows.append(r)
            codes.append(vocab.encode(profiles.get(user),
                                      None if stamps is None else stamps[s] * 1000))
    return Windows(rows, np.array(codes, np.int64).reshape(len(rows), len(vocab.sizes)))


def new_recaller(rqvae: RQVAE, table: SidTable, vocab: ProfileVocab, cfg: ProfileTrainConfig
                 ) -> GenerativeRecaller:
    """An untrained recaller; with ``cfg.profile`` its model reads ``vocab``'s tokens."""
    sizes = vocab.sizes if cfg.profile else ()
    gen = replace(cfg.gen, profile_sizes=sizes)
    torch.manual_seed(cfg.seed)  # the initial weights do not depend on what ran before
    model = build_model(table.vocab_sizes, len(table.sids) + 1,
                        RecallTrainConfig(gen=gen, max_hist=cfg.max_hist))
    rec = GenerativeRecaller(rqvae, table, model, max_hist=cfg.max_hist)
    rec.profile_vocab = vocab if cfg.profile else None
    return rec


def train(rec: GenerativeRecaller, windows: Windows, cfg: ProfileTrainConfig,
          progress: bool = True, desc: str = "") -> list[float]:
    """Train ``rec.model`` in place for ``cfg.epochs``; returns the mean loss per epoch."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = rec.model
    sched = RecallTrainConfig(lr=cfg.lr, warmup_steps=cfg.warmup_steps, epochs=cfg.epochs)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.05,
                            betas=(0.9, 0.98))
    per_epoch = -(-len(windows.rows) // cfg.batch_size)
    total, step, losses = cfg.epochs * per_epoch, 0, []
    for epoch in range(1, cfg.epochs + 1):
        codes = (drop_fields(windows.codes, cfg.p_field, cfg.p_all, rng)
                 if model.cfg.n_profile else None)
        batches = train_batches(windows.rows, rec.tokens, model.cfg, cfg.batch_size, rng,
                                profiles=codes)
        loss, step = _train_epoch(model, opt, batches, per_epoch, step, total, sched,
                                  f"{desc}epoch {epoch}", progress)
        losses.append(loss)
        log.info("%sepoch %d loss %.4f", desc, epoch, loss)
    model.eval()
    return losses
