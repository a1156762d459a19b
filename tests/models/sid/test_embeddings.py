from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from models.data.dataset import ItemMeta
from models.sid import embeddings
from tests.fixtures.recall_models import synthetic_dataset


def fake_encode(texts: Sequence[str], batch_size: int = 64, progress: bool = False
                ) -> np.ndarray:
    rng = np.random.default_rng(len(texts))
    v = rng.standard_normal((len(texts), embeddings.EMB_DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_embeddings_are_cached_by_text_hash(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def counting(texts: Sequence[str], **kw: object) -> np.ndarray:
        calls.append(len(texts))
        return fake_encode(texts)

    monkeypatch.setattr(embeddings, "encode_texts", counting)
    a = embeddings.cached_text_embeddings(["x", "y"], tmp_path, progress=False)
    b = embeddings.cached_text_embeddings(["x", "y"], tmp_path, progress=False)
    assert calls == [2] and np.array_equal(a, b)
    embeddings.cached_text_embeddings(["x", "z"], tmp_path, progress=False)  # new texts
    assert calls == [2, 2] and len(list(tmp_path.glob("emb-*.npy"))) == 2
    assert embeddings.texts_hash(["ab", "c"]) != embeddings.texts_hash(["a", "bc"])


def test_items_without_text_get_collaborative_vectors(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings, "encode_texts", fake_encode)
    ds = synthetic_dataset(n_users=30, n_items=12)
    ds.items[5] = ItemMeta(5)  # no text at all
    ds.items[99] = ItemMeta(99)  # no text and never interacted with
    emb = embeddings.item_embeddings(ds, tmp_path, progress=False)
    rows = {int(i): r for r, i in enumerate(emb.item_ids)}
    assert emb.vectors.shape == (13, embeddings.EMB_DIM)
    assert not emb.from_text[rows[5]] and not emb.from_text[rows[99]]
    assert emb.from_text.sum() == 11
    np.testing.assert_allclose(np.linalg.norm(emb.vectors, axis=1), 1.0, rtol=1e-5)
    # item 5 sits between items 4 and 6 in the walks: closer to them than to a far item
    sim = emb.vectors @ emb.vectors[rows[5]]
    assert sim[rows[4]] > 0.1 and sim[rows[6]] > 0.1
