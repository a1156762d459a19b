"""Leave-one-out splits and SID token batches for the generative recall model.

Protocol (``../shared/data/amazon-beauty-2014/README.md``): per user the last item is the test
target, the second-to-last the validation target; training sees ``items[:-2]``. The history given
to the model is capped at the ``max_hist`` most recent items before the target.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from models.data.dataset import SeqDataset
from models.recall.model import BOS, PAD, GenConfig, TokenBatch

SPLITS = ("valid", "test")


class Split(NamedTuple):
    users: np.ndarray  # [U] user ids
    histories: list[list[int]]  # item ids, at most max_hist, chronological
    targets: np.ndarray  # [U] item ids
    seen: list[set[int]]  # every item of the user before the target


def leave_one_out(ds: SeqDataset, split: str, max_hist: int = 20) -> Split:
    """Validation (second-to-last item) or test (last item) split over all users."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    cut = 2 if split == "valid" else 1
    users, hists, targets, seen = [], [], [], []
    for user in sorted(ds.sequences):
        seq = ds.sequences[user]
        if len(seq) < cut + 1:
            continue
        prior = seq[: len(seq) - cut]
        users.append(user)
        hists.append(prior[-max_hist:])
        targets.append(seq[len(seq) - cut])
        seen.append(set(prior))
    return Split(np.array(users, np.int64), hists, np.array(targets, np.int64), seen)


def sample_split(data: Split, n: int, seed: int) -> Split:
    """A fixed random sample of ``n`` users of ``data`` (all of them when ``n`` <= 0 or >= U)."""
    if n <= 0 or n >= len(data.targets):
        return data
    idx = np.sort(np.random.default_rng(seed).choice(len(data.targets), n, replace=False))
    return Split(data.users[idx], [data.histories[i] for i in idx], data.targets[idx],
                 [data.seen[i] for i in idx])


def train_windows(ds: SeqDataset, max_items: int = 21, stride: int = 10) -> list[list[int]]:
    """Training sequences ``items[:-2]`` cut into windows of at most ``max_items`` items."""
    out = []
    for user in sorted(ds.sequences):
        seq = ds.sequences[user][:-2]
        if len(seq) < 2:
            continue
        starts = list(range(0, max(len(seq) - max_items, 0) + 1, stride))
        if starts[-1] != max(len(seq) - max_items, 0):
            starts.append(len(seq) - max_items)
        out += [seq[s: s + max_items] for s in starts]
    return out


@dataclass
class ItemTokens:
    """Item id -> row (1-based; 0 = unknown) and row -> SID as global token ids."""

    index: dict[int, int]
    tokens: np.ndarray  # [rows, L] int64, row 0 = PAD

    @classmethod
    def build(cls, sids: dict[int, tuple[int, ...]], cfg: GenConfig) -> ItemTokens:
        it = cls({}, np.full((1, cfg.levels), PAD, np.int64))
        it.add_many(sids, cfg)
        return it

    def add_many(self, sids: dict[int, tuple[int, ...]], cfg: GenConfig) -> None:
        new = [i for i in sorted(sids) if i not in self.index]
        off = np.array(cfg.offsets, np.int64)
        rows = np.array([sids[i] for i in new], np.int64).reshape(-1, cfg.levels) + off
        for r, i in enumerate(new):
            self.index[i] = len(self.tokens) + r
        self.tokens = np.concatenate([self.tokens, rows])

    def rows(self, items: Sequence[int]) -> np.ndarray:
        """Rows of known items (unknown ones are dropped)."""
        return np.array([self.index[i] for i in items if i in self.index], np.int64)


def _encode(rows: np.ndarray, tokens: np.ndarray, lv: int, n_id_rows: int, full: bool
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flatten item rows to (tok, pos, iid). ``full`` keeps the last item's last token
    (inference prefix); otherwise it is dropped (teacher-forcing input)."""
    n = len(rows)
    flat = tokens[rows].reshape(-1)
    tok = np.concatenate([[BOS], flat if full else flat[:-1]])
    pos = np.concatenate([[0], np.repeat(np.arange(1, n + 1), lv)])[: len(tok)]
    iid = np.zeros(len(tok), np.int64)
    last = np.arange(1, n + 1) * lv  # index of each item's last token
    keep = last < len(tok)
    iid[last[keep]] = np.where(rows[keep] < n_id_rows, rows[keep], 0)
    return tok, pos, iid


def make_batch(seqs: Sequence[np.ndarray], it: ItemTokens, cfg: GenConfig, train: bool,
               profiles: Sequence[np.ndarray] | None = None) -> tuple[TokenBatch, torch.Tensor]:
    """Right-padded batch; with ``train`` targets are every next token, else the prefix for
    generation. Also returns the lengths [B]. A model with profile tokens gets each
    sequence's field codes (``profiles[b]``, models/data/profile.py; None: all unknown) first."""
    lv, off = cfg.levels, np.array(cfg.offsets)
    enc = [_encode(r, it.tokens, lv, cfg.n_items, full=not train) for r in seqs]
    if cfg.n_profile:
        enc = [_with_profile(e, None if profiles is None else profiles[b], cfg)
               for b, e in enumerate(enc)]
    t = max(len(e[0]) for e in enc)
    tok, pos, iid = (np.zeros((len(enc), t), np.int64) for _ in range(3))
    tgt = np.full((len(enc), t), -100, np.int64)
    nxt = np.full((len(enc), -(-(t - cfg.n_profile) // lv)), -100, np.int64)
    for b, ((tk, ps, ii), rows) in enumerate(zip(enc, seqs, strict=True)):
        tok[b, : len(tk)], pos[b, : len(tk)], iid[b, : len(tk)] = tk, ps, ii
        if train:
            tgt[b, cfg.n_profile: len(tk)] = (it.tokens[rows] - off).reshape(-1)
            nxt[b, : len(rows)] = np.where(rows < cfg.n_items, rows, -100)
    lengths = torch.tensor([len(e[0]) for e in enc])
    batch = TokenBatch(*(torch.from_numpy(a) for a in (tok, pos, iid, tgt, nxt)))
    return batch, lengths


def _with_profile(enc: tuple[np.ndarray, np.ndarray, np.ndarray], codes: np.ndarray | None,
                  cfg: GenConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Profile tokens (position 0, no item id) before BOS."""
    head = np.array(cfg.profile_offsets, np.int64)
    if codes is not None:
        head = head + np.asarray(codes, np.int64)
    zero = np.zeros(cfg.n_profile, np.int64)
    return (np.concatenate([head, enc[0]]), np.concatenate([zero, enc[1]]),
            np.concatenate([zero, enc[2]]))


def train_batches(seqs: list[np.ndarray], it: ItemTokens, cfg: GenConfig, batch_size: int,
                  rng: np.random.Generator, profiles: np.ndarray | None = None
                  ) -> Iterator[TokenBatch]:
    """Length-bucketed shuffled batches (sorting by length cuts padding roughly in half);
    ``profiles`` [N, F]: each sequence's profile field codes (profile models)."""
    order = rng.permutation(len(seqs))
    order = order[np.argsort([len(seqs[i]) for i in order], kind="stable")]
    chunks = [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
    for c in rng.permutation(len(chunks)):
        prof = None if profiles is None else [profiles[i] for i in chunks[c]]
        yield make_batch([seqs[i] for i in chunks[c]], it, cfg, train=True, profiles=prof)[0]
