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
            table.sids[item] = tuple(sid)
            table.prefix_count[tuple(sid[:-1])] += 1
    return model, table


def load_tokenizer(path: Path) -> tuple[RQVAE, SidTable, dict[str, Any]]:
    """Validated tokenizer artifact -> (RQ-VAE, SID table, manifest config)."""
    man = load_manifest(path, kind=KIND, fmt=FORMAT)
    model, table = load_tokenizer_files(resolve(path))
    return model, table, man.config
