"""Scaled-up item-to-item for the long tail ("DeepI2I"): skip-gram item embeddings.

Item vectors are trained with skip-gram and negative sampling over users' behaviour sequences.
Two additions matter for rare items, which plain co-visitation can hardly place:

- **random walks on the co-visitation graph**, started from every low-frequency item, are
  added to the training sequences, so rare items get many more (transitive) contexts;
- **side information**: an item's vector is its id embedding plus a learned projection of its
  text embedding (MiniLM), so items with few interactions borrow from similar texts.

The offline product is a top-``k`` similar-items table per item (cosine similarity). Evaluation
(``evaluate_i2i``): for every user, the next item after the last training item, HR@10 of the
table's neighbours of that last item, overall and for last items with fewer than ``low_freq``
training interactions, beside plain co-visitation counted from the same sequences.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from models.artifacts import ArtifactError, load_manifest, resolve
from models.sid.embeddings import item_embeddings

log = logging.getLogger(__name__)


@dataclass
class I2IConfig:
    dim: int = 64
    window: int = 3  # skip-gram context on each side
    negatives: int = 10
    low_freq: int = 10  # items with fewer interactions are "long tail"
    walks_per_item: int = 20  # random walks started from each long-tail item
    walk_length: int = 8
    side_info: bool = True  # text embedding as side information
    epochs: int = 5
    batch_size: int = 4096
    lr: float = 0.01
    top_k: int = 50
    seed: int = 0


class ItemVectors(nn.Module):
    """Item vector = id embedding (+ projected text embedding); separate context vectors."""

    def __init__(self, n_rows: int, dim: int, text: torch.Tensor | None = None):
        super().__init__()
        self.emb = nn.Embedding(n_rows, dim)
        self.ctx = nn.Embedding(n_rows, dim)
        nn.init.normal_(self.emb.weight, std=0.1)
        nn.init.zeros_(self.ctx.weight)
        self.text: torch.Tensor | None = text
        self.proj = nn.Linear(text.shape[1], dim, bias=False) if text is not None else None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        v = self.emb(ids)
        if self.proj is not None and self.text is not None:
            v = v + self.proj(self.text[ids])
        return v


def covisit_neighbors(sequences: list[list[int]], window: int = 3) -> dict[int, Counter[int]]:
    """Symmetric co-occurrence counts within ``window`` positions."""
    out: dict[int, Counter[int]] = {}
    for seq in sequences:
        for i, a in enumerate(seq):
            for b in seq[max(0, i - window): i]:
                if a != b:
                    out.setdefault(a, Counter())[b] += 1
                    out.setdefault(b, Counter())[a] += 1
    return out


def random_walks(graph: dict[int, Counter[int]], starts: list[int], cfg: I2IConfig,
                 rng: np.random.Generator) -> list[list[int]]:
    """Walks of ``walk_length`` items, each step to a neighbour drawn by co-count."""
    walks = []
    nbrs = {a: (np.array(list(c)), np.array(list(c.values()), np.float64)) for a, c in
            graph.items()}
    for start in starts:
        if start not in nbrs:
            continue
        for _ in range(cfg.walks_per_item):
            walk, cur = [start], start
            for _ in range(cfg.walk_length - 1):
                items, w = nbrs[cur]
                cur = int(items[rng.choice(len(items), p=w / w.sum())])
                walk.append(cur)
            walks.append(walk)
    return walks


def skipgram_pairs(sequences: list[list[int]], window: int) -> tuple[np.ndarray, np.ndarray]:
    centers, contexts = [], []
    for seq in sequences:
        arr = np.asarray(seq, np.int64)
        for off in range(1, window + 1):
            if len(arr) > off:
                centers += [arr[off:], arr[:-off]]
                contexts += [arr[:-off], arr[off:]]
    if not centers:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(centers), np.concatenate(contexts)


def train_i2i(sequences: list[list[int]], n_rows: int, cfg: I2IConfig,
              text: np.ndarray | None = None, progress: bool = True) -> ItemVectors:
    """Skip-gram with negative sampling (unigram^0.75) over sequences + long-tail walks."""
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    counts = Counter(i for s in sequences for i in s)
    tail = sorted(i for i, c in counts.items() if c < cfg.low_freq)
    walks = random_walks(covisit_neighbors(sequences, cfg.window), tail, cfg, rng)
    centers, contexts = skipgram_pairs(sequences + walks, cfg.window)
    freq = np.zeros(n_rows)
    for i, c in counts.items():
        freq[i] = c
    noise = torch.as_tensor(freq ** 0.75 / (freq ** 0.75).sum(), dtype=torch.float)
    model = ItemVectors(n_rows, cfg.dim, torch.as_tensor(text) if cfg.side_info and text is not
                        None else None)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    log.info("i2i: %d sequences + %d walks from %d long-tail items -> %d pairs", len(sequences),
             len(walks), len(tail), len(centers))
    c_t, x_t = torch.as_tensor(centers), torch.as_tensor(contexts)
    for epoch in range(cfg.epochs):
        perm = torch.as_tensor(rng.permutation(len(c_t)))
        losses = []
        for s in tqdm(range(0, len(perm), cfg.batch_size), desc=f"i2i epoch {epoch + 1}",
                      disable=not progress, mininterval=2.0):
            idx = perm[s: s + cfg.batch_size]
            v = model(c_t[idx])
            pos = (v * model.ctx(x_t[idx])).sum(-1)
            neg_ids = torch.multinomial(noise, len(idx) * cfg.negatives, replacement=True)
            neg = torch.einsum("bd,bnd->bn", v, model.ctx(neg_ids).view(len(idx),
                                                                         cfg.negatives, -1))
            loss = -(F.logsigmoid(pos).mean() + F.logsigmoid(-neg).sum(-1).mean())
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        log.info("i2i epoch %d: loss %.4f", epoch + 1, float(np.mean(losses)))
    return model.eval()


@torch.no_grad()
def similar_table(model: ItemVectors, items: np.ndarray, k: int, chunk: int = 2048
                  ) -> np.ndarray:
    """[max item + 1, k] most similar items (cosine) of each of ``items`` (row 0 unused)."""
    ids = torch.as_tensor(items)
    vecs = F.normalize(model(ids), dim=-1)
    table = np.zeros((int(items.max()) + 1, k), np.int64)
    for s in range(0, len(ids), chunk):
        sim = vecs[s: s + chunk] @ vecs.T
        sim[torch.arange(sim.shape[0]), torch.arange(s, s + sim.shape[0])] = -2.0  # not itself
        top = sim.topk(k, dim=-1).indices
        table[items[s: s + chunk]] = items[top.numpy()]
    return table


def evaluate_i2i(table: np.ndarray, sequences: list[list[int]], cfg: I2IConfig,
                 k: int = 10) -> dict[str, Any]:
    """HR@k of the next item (each user's last) from the item before it: the table against
    co-visitation counted from the training part; overall and for long-tail query items."""
    train = [s[:-1] for s in sequences if len(s) >= 2]
    counts = Counter(i for s in train for i in s)
    covis = covisit_neighbors(train, cfg.window)
    hits = {"i2i": [0, 0], "covisit": [0, 0]}  # [all, long tail]
    n = [0, 0]
    for s in sequences:
        if len(s) < 2:
            continue
        q, target = s[-2], s[-1]
        tail = counts[q] < cfg.low_freq
        n[0] += 1
        n[1] += tail
        lists = {"i2i": table[q, :k].tolist() if q < len(table) else [],
                 "covisit": [i for i, _ in covis.get(q, Counter()).most_common(k)]}
        for name, lst in lists.items():
            hit = target in lst
            hits[name][0] += hit
            hits[name][1] += hit and tail
    return {f"{name}/hr@{k}{suffix}": h[j] / max(n[j], 1) for name, h in hits.items()
            for j, suffix in ((0, ""), (1, "_tail"))} | {"users": n[0], "tail_users": n[1]}


def run_i2i(ds: Any, cfg: I2IConfig, progress: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """Train on each user's sequence but its last item, build the table, evaluate."""

    t0 = time.time()
    seqs = [ds.sequences[u] for u in sorted(ds.sequences)]
    n_rows = max(ds.items) + 1
    text = None
    if cfg.side_info:
        emb = item_embeddings(ds, progress=progress)
        text = np.zeros((n_rows, emb.vectors.shape[1]), np.float32)
        text[emb.item_ids] = emb.vectors
    model = train_i2i([s[:-1] for s in seqs], n_rows, cfg, text, progress)
    table = similar_table(model, np.array(sorted(ds.items), np.int64), cfg.top_k)
    metrics = evaluate_i2i(table, seqs, cfg)
    metrics["seconds"] = round(time.time() - t0, 1)
    return table, metrics


KIND, FORMAT, TABLE_FILE = "i2i", 1, "similar.npy"


def load_similar(path: Any) -> np.ndarray:
    """The validated similar-items table of an i2i artifact (a version dir or a root)."""


    load_manifest(Path(path), kind=KIND, fmt=FORMAT)
    table = np.load(resolve(Path(path)) / TABLE_FILE, allow_pickle=False)
    if table.ndim != 2 or not np.issubdtype(table.dtype, np.integer):
        raise ArtifactError(f"{path}: {TABLE_FILE} is not a 2-D integer table")
    return table
