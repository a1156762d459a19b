"""How SIDRec's recall cost grows with the catalogue: synthetic catalogues of N items.

Speed only (the weights are random, so nothing here measures quality): N items get unique
random SIDs (uniform codes, collision index by arrival), a SIDRec of the served shape is built
over them, and random histories are searched in each mode at beam 20. Reported per N: users/s
of each mode and the memory the search needs beside the weights (trie tables, item table and
SID codes, the per-batch score matrix of the item head).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch

from models.recall.beam import Excluder
from models.recall.sidrec import SIDRec, SIDRecConfig
from models.recall.sidrec_search import MODES, rank
from models.sid.table import build_sid_table
from models.sid.trie import SidTrie

log = logging.getLogger(__name__)


def synthetic_catalogue(n_items: int, vocab: tuple[int, ...], seed: int
                        ) -> tuple[np.ndarray, SidTrie]:
    """Unique SIDs [n_items + 1, L] (row 0 unused) for items 1..n and their trie."""
    rng = np.random.default_rng(seed)
    codes = np.stack([rng.integers(0, v, n_items) for v in vocab[:-1]], 1)
    cand = np.stack([codes[:, -1], *(rng.integers(0, vocab[-2], n_items) for _ in range(7))], 1)
    table = build_sid_table(np.arange(1, n_items + 1), codes, cand, vocab[-2], vocab[-1])
    sids = np.full((n_items + 1, len(vocab)), -1, np.int64)
    sids[1:] = table.array(np.arange(1, n_items + 1))
    trie = SidTrie.from_sids(vocab, ((tuple(sids[i]), i) for i in range(1, n_items + 1)))
    return sids, trie


def _trie_bytes(trie: SidTrie) -> int:
    return sum(trie.table(lv).nbytes for lv in range(trie.depth))


def bench_scale(n_items: int, users: int = 2048, beam: int = 20, k: int = 10,
                batch_size: int = 256, d_model: int = 64, seed: int = 0,
                vocab: tuple[int, ...] = (256, 256, 256, 64)) -> dict[str, Any]:
    """users/s per mode and memory for one synthetic catalogue of ``n_items`` items."""
    torch.manual_seed(seed)
    sids, trie = synthetic_catalogue(n_items, vocab, seed)
    model = SIDRec(SIDRecConfig(vocab_sizes=vocab, n_items=n_items, d_model=d_model)).eval()
    model.add_items(torch.arange(1, n_items + 1), torch.from_numpy(sids[1:]), trained=True)
    rng = np.random.default_rng(seed)
    seqs = torch.from_numpy(rng.integers(1, n_items + 1, (users, model.cfg.max_len)))
    out: dict[str, Any] = {"items": n_items, "users": users, "beam": beam, "k": k,
                           "batch_size": batch_size, "threads": torch.get_num_threads(),
                           "trie_mb": round(_trie_bytes(trie) / 2**20, 1),
                           "item_table_mb": round(n_items * d_model * 4 / 2**20, 1),
                           "codes_mb": round(sids.nbytes / 2**20, 1),
                           "item_scores_mb_per_batch": round(batch_size * n_items * 4 / 2**20,
                                                             1)}
    with torch.no_grad():
        table = model.item_table()
        for mode in MODES:
            _run(model, trie, seqs[:batch_size], table, k, beam, mode, batch_size)  # warm-up
            t0 = time.perf_counter()
            _run(model, trie, seqs, table, k, beam, mode, batch_size)
            out[f"{mode}_users_per_s"] = round(users / (time.perf_counter() - t0), 1)
    log.info("%d items: users/s beam %.0f, item %.0f, hybrid %.0f; trie %.1f MB, item table "
             "%.1f MB", n_items, out["beam_users_per_s"], out["item_users_per_s"],
             out["hybrid_users_per_s"], out["trie_mb"], out["item_table_mb"])
    return out


def _run(model: SIDRec, trie: SidTrie, seqs: torch.Tensor, table: torch.Tensor, k: int,
         beam: int, mode: str, batch_size: int) -> None:
    for s in range(0, len(seqs), batch_size):
        part = seqs[s: s + batch_size]
        h = model.encode(part, table)[:, -1]
        rank(model, trie, h, table, k, beam, mode, 1.0, Excluder(None, len(part)))
