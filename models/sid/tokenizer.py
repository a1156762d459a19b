"""The frozen tokenizer as served: the RQ-VAE and the SID table of a tokenizer artifact.

Training (``models/sid/train.py``) writes these files; the recaller reads them to give new
catalogue items a SID without importing any training code. Files: ``rqvae.pt`` (config +
weights) and ``sids.npz`` (item ids, their SIDs, the table's sizes).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.artifacts import load_manifest, resolve
from models.sid.embeddings import encode_texts
from models.sid.rqvae import RQVAE, RQVAEConfig
from models.sid.table import SidTable

KIND, FORMAT = "tokenizer", 1


def save_tokenizer_files(out: Path, model: RQVAE, table: SidTable) -> None:
    torch.save({"config": asdict(model.cfg), "state": model.state_dict()}, out / "rqvae.pt")
    items = np.array(sorted(table.sids), np.int64)
    np.savez(out / "sids.npz", items=items, sids=table.array(items),
             meta=np.array([table.n_levels, table.codebook_size, table.dup_vocab, table.moved]))


def load_tokenizer_files(path: Path) -> tuple[RQVAE, SidTable]:
    blob = torch.load(path / "rqvae.pt", map_location="cpu", weights_only=True)
    cfg = RQVAEConfig(**{**blob["config"], "hidden": tuple(blob["config"]["hidden"])})
    model = RQVAE(cfg)
    model.load_state_dict(blob["state"])
    model.eval()
    with np.load(path / "sids.npz") as z:
        n_levels, k, dup, moved = (int(v) for v in z["meta"])
        table = SidTable(n_levels, k, dup, moved=moved)
        for item, sid in zip(z["items"].tolist(), z["sids"].tolist(), strict=True):
            table.put(item, tuple(sid))
    return model, table


VECTORS = "item_vectors.npz"


def save_item_vectors(out: Path, item_ids: np.ndarray, vectors: np.ndarray) -> None:
    """The vectors the RQ-VAE quantized (text or item2vec), kept for models that embed items
    by them too (SIDRec's ``content_dim``)."""
    np.savez(out / VECTORS, items=np.asarray(item_ids, np.int64),
             vectors=np.asarray(vectors, np.float32))


def load_item_vectors(path: Path) -> dict[int, np.ndarray]:
    """Item -> the vector the tokenizer artifact ``path`` quantized for it."""
    f = resolve(path) / VECTORS
    if not f.exists():
        raise ValueError(f"{resolve(path)}: no {VECTORS}; retrain the tokenizer "
                         "(older artifacts did not keep their item vectors)")
    with np.load(f) as z:
        return dict(zip(z["items"].tolist(), z["vectors"], strict=True))


def load_tokenizer(path: Path) -> tuple[RQVAE, SidTable, dict[str, Any]]:
    """Validated tokenizer artifact -> (RQ-VAE, SID table, manifest config)."""
    man = load_manifest(path, kind=KIND, fmt=FORMAT)
    model, table = load_tokenizer_files(resolve(path))
    return model, table, man.config


def new_item_sid(rqvae: RQVAE, table: SidTable, item: int, text: str | None = None,
                 vector: np.ndarray | None = None, n_last_candidates: int = 16
                 ) -> tuple[int, ...]:
    """A catalogue upsert's SID: the frozen encoder (or a given embedding ``vector``) and
    quantizer -> a unique SID in ``table``; an item already there keeps its SID."""
    if item in table.sids:
        return table.sids[item]
    if vector is None:
        if not text:
            raise ValueError(f"item {item}: need text or an embedding vector")
        vector = encode_texts([text])[0]
    x = torch.as_tensor(np.asarray(vector, np.float32)).view(1, -1)
    if x.shape[1] != rqvae.cfg.in_dim:
        raise ValueError(f"item {item}: a {x.shape[1]}-d vector, but the tokenizer quantizes "
                         f"{rqvae.cfg.in_dim}-d ones")
    with torch.no_grad():
        codes, cand = rqvae.encode_candidates(x, n_last_candidates)
    return table.add(item, codes[0].numpy(), cand[0].numpy())


def known_item_sid(table: SidTable, item: int, sid: tuple[int, ...]) -> tuple[int, ...]:
    """Record ``item`` under the SID another copy of the same artifact gave it; the table
    assigns it again from its codes, so a copy out of step with the other raises."""
    got = table.add(item, np.asarray(sid[:-1], np.int64))
    if got != tuple(sid):
        raise ValueError(f"item {item}: SID {tuple(sid)} assigned elsewhere, {got} here")
    return got
