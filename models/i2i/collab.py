"""Collaborative item vectors, the tokenizer's input for catalogues without item text.

Without text every item would get a random vector and its SID would carry no signal. Here an
item's vector is its skip-gram (item2vec) embedding over the *training* part of the users'
sequences (``items[:-2]``, so neither validation nor test targets leak into the SIDs), trained
by the DeepI2I trainer (``models/i2i/deepi2i.py``) without side information: items that
appear in the same contexts get nearby vectors, hence shared SID prefixes. An item never seen
in training keeps its random initial vector.
"""

from __future__ import annotations

import logging

import numpy as np

from models.data.dataset import SeqDataset
from models.i2i.deepi2i import I2IConfig, train_i2i
from models.sid.embeddings import ItemEmbeddings

log = logging.getLogger(__name__)


def collaborative_vectors(ds: SeqDataset, item_ids: np.ndarray, dim: int = 64, epochs: int = 5,
                          seed: int = 0, progress: bool = True) -> np.ndarray:
    """Unit-norm item2vec vectors [len(item_ids), dim] of ``item_ids``."""
    seqs = [ds.sequences[u][:-2] for u in sorted(ds.sequences)]
    seqs = [s for s in seqs if len(s) > 1]
    n_rows = int(max(item_ids.max(initial=0), max(ds.items, default=0))) + 1
    cfg = I2IConfig(dim=dim, side_info=False, epochs=epochs, seed=seed)
    model = train_i2i(seqs, n_rows, cfg, None, progress)
    vecs = model.emb.weight.detach().numpy()[item_ids].astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True).clip(min=1e-12)
    log.info("collaborative vectors: %d items, dim %d, from %d training sequences",
             len(item_ids), dim, len(seqs))
    return vecs


def collaborative_embeddings(ds: SeqDataset, seed: int = 0, epochs: int = 5,
                             progress: bool = True) -> ItemEmbeddings:
    """Every catalogue item's collaborative vector, as the tokenizer's input."""
    ids = np.array(sorted(ds.items), dtype=np.int64)
    vecs = collaborative_vectors(ds, ids, epochs=epochs, seed=seed, progress=progress)
    return ItemEmbeddings(ids, vecs, np.zeros(len(ids), bool))
