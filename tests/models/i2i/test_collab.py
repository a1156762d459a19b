"""Collaborative item vectors: items of the same contexts end up close, and the tokenizer uses
them exactly when the catalogue has no text."""

from __future__ import annotations

import numpy as np

from models.data.dataset import ItemMeta, SeqDataset
from models.i2i.collab import collaborative_embeddings
from models.sid.train import wants_collab
from tests.fixtures.recall_models import synthetic_dataset


def _id_only(ds: SeqDataset) -> SeqDataset:
    return SeqDataset(ds.name, ds.sequences, {i: ItemMeta(i) for i in ds.items})


def test_items_that_follow_each_other_get_close_vectors() -> None:
    ds = _id_only(synthetic_dataset(n_users=300))
    emb = collaborative_embeddings(ds, seed=0, epochs=60, progress=False)
    v = emb.vectors
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    rows = {int(i): r for r, i in enumerate(emb.item_ids)}
    n = len(rows)
    near = np.mean([v[rows[i]] @ v[rows[i % n + 1]] for i in rows])
    rng = np.random.default_rng(0)
    far = np.mean([v[rows[int(a)]] @ v[rows[int(b)]] for a, b in rng.integers(1, n + 1, (200, 2))
                   if abs(int(a) - int(b)) > 3])
    assert near > far + 0.3, (near, far)


def test_the_tokenizer_quantizes_collaborative_vectors_only_without_text() -> None:
    ds = synthetic_dataset()
    assert not wants_collab(ds, "auto") and wants_collab(ds, "collab")
    assert wants_collab(_id_only(ds), "auto") and not wants_collab(_id_only(ds), "text")
