"""Tiny synthetic fixtures for the semantic-ID / generative-recall tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.data.dataset import ItemMeta, SeqDataset
from models.recall.model import SIDGPT, GenConfig
from models.recall.recaller import GenerativeRecaller
from models.sid.rqvae import RQVAE, RQVAEConfig
from models.sid.table import build_sid_table

torch.set_num_threads(1)

N_ITEMS = 40
DIM = 16


def synthetic_dataset(n_users: int = 60, n_items: int = N_ITEMS, seed: int = 0) -> SeqDataset:
    """Users walk the catalogue in steps of +1 (mod n): the next item is predictable."""
    rng = np.random.default_rng(seed)
    seqs = {}
    for u in range(1, n_users + 1):
        start, length = int(rng.integers(n_items)), int(rng.integers(5, 9))
        seqs[u] = [(start + j) % n_items + 1 for j in range(length)]
    items = {i: ItemMeta(i, title=f"item {i}", brand=f"brand {i % 4}") for i in
             range(1, n_items + 1)}
    return SeqDataset("synthetic", seqs, items)


def clustered_vectors(n: int = N_ITEMS, dim: int = DIM, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((4, dim))
    return (centers[np.arange(n) % 4] + 0.3 * rng.standard_normal((n, dim))).astype(np.float32)


def tiny_recaller(seed: int = 0, dup_vocab: int = 8, item_loss: float = 0.0
                  ) -> GenerativeRecaller:
    """Untrained but complete recaller over N_ITEMS items with SIDs of 2 codes + collision."""
    torch.manual_seed(seed)
    vecs = clustered_vectors(seed=seed)
    rq = RQVAE(RQVAEConfig(in_dim=DIM, hidden=(32,), latent_dim=8, n_levels=2, codebook_size=6,
                           kmeans_iters=5))
    rq.init_codebooks(torch.from_numpy(vecs), torch.Generator().manual_seed(seed))
    rq.eval()
    codes, cand = rq.encode_candidates(torch.from_numpy(vecs), 4)
    table = build_sid_table(np.arange(1, N_ITEMS + 1), codes.numpy(), cand.numpy(), 6,
                            dup_vocab)
    gen = GenConfig(vocab_sizes=table.vocab_sizes, n_items=N_ITEMS + 1, max_items=9,
                    d_model=32, n_layers=2, n_heads=2, d_ff=64, dropout=0.0, item_loss=item_loss)
    return GenerativeRecaller(rq, table, SIDGPT(gen), max_hist=8)


@pytest.fixture
def recaller() -> GenerativeRecaller:
    return tiny_recaller()


@pytest.fixture
def dataset() -> SeqDataset:
    return synthetic_dataset()
