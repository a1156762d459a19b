"""Real, tiny model artifacts for stream tests: trained in seconds by the production code paths.

Catalogue: ``N_ITEMS`` items in 4 categories; users walk it in steps of +1, so the generative
model learns "next = last + 1" and its recall is predictable. The tokenizer embeds the real item
texts with MiniLM; the recall model and the ranker are trained by the same functions as the CLI.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import redis

from infra.worker_process import WorkerProcess
from models.data.dataset import ItemMeta, SeqDataset
from models.rank.toy import write_shared_format
from models.recall.model import GenConfig
from models.recall.train import RecallTrainConfig, run_train_recall
from models.sid.rqvae import RQVAEConfig
from models.sid.train import TokenizerTrainConfig, run_train_tokenizer
from streams.settings import Settings
from tests.conftest import log_tail

N_ITEMS = 40
CATEGORIES = ("lipstick", "shampoo", "perfume", "sunscreen")


def item_meta(i: int) -> ItemMeta:
    cat = CATEGORIES[i % 4]
    return ItemMeta(i, title=f"{cat} number {i}", brand=f"brand{i % 3}",
                    categories=(("Beauty", cat),), price=float(5 + i % 7))


def walk_dataset(n_users: int = 150, seed: int = 0) -> SeqDataset:
    rng = np.random.default_rng(seed)
    seqs = {}
    for u in range(1, n_users + 1):
        start, length = int(rng.integers(N_ITEMS)), int(rng.integers(6, 10))
        seqs[u] = [(start + j) % N_ITEMS + 1 for j in range(length)]
    return SeqDataset("walk", seqs, {i: item_meta(i) for i in range(1, N_ITEMS + 1)})


def build_model_dir(root: Path) -> Path:
    """``root/models/{recall,ranker}`` with one trained version each; returns ``root/models``."""
    ds = walk_dataset()
    data = write_shared_format(ds, root / "data")
    tok = run_train_tokenizer(ds, root / "tokenizer", TokenizerTrainConfig(
        rqvae=RQVAEConfig(hidden=(64,), latent_dim=16, n_levels=2, codebook_size=8,
                          kmeans_iters=5), epochs=30, batch_size=64, dup_vocab=16),
        progress=False)
    gen = GenConfig(d_model=32, n_layers=2, n_heads=2, d_ff=64, dropout=0.0, item_loss=1.0)
    cfg = RecallTrainConfig(gen=gen, epochs=40, batch_size=32, lr=1e-2, warmup_steps=10,
                            eval_every=20, eval_users=0, patience=10, beam=8, max_hist=8,
                            item_weights=(1.0,))
    models = root / "models"
    run_train_recall(ds, tok, models / "recall", cfg, progress=False, test=False)
    from streams.cli.main import main

    assert main(["train-ranker", str(data), "--out", str(models / "ranker"), "--sid-artifact",
                 str(models / "recall"), "--epochs", "1", "--d", "8", "--hidden", "8",
                 "--max-hist", "8", "--eval-users", "20"]) == 0
    return models


def copy_version(root: Path, kind: str, new_version: str, corrupt: bool = False) -> str:
    """Publish a copy of ``kind``'s LATEST as ``new_version`` (optionally with a damaged
    weights file) and point LATEST at it, the way a training job publishes."""
    base = root / kind
    src = base / (base / "LATEST").read_text().strip()
    dst = base / new_version
    shutil.copytree(src, dst)
    if corrupt:
        weights = max((p for p in dst.iterdir() if p.suffix == ".pt"), key=lambda p: p.name)
        weights.write_bytes(weights.read_bytes()[:100])
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest["version"] = new_version
    (dst / "manifest.json").write_text(json.dumps(manifest))
    (base / "LATEST").write_text(new_version + "\n")
    return new_version


class Served:
    """A worker process serving model artifacts, and the Redis database of its lists."""

    def __init__(self, worker: WorkerProcess, models: Path, rclient: redis.Redis,
                 settings: Settings | None = None) -> None:
        self.worker, self.models, self.rclient, self.settings = worker, models, rclient, settings

    def recs(self, user: str) -> dict[str, Any] | None:
        raw = self.rclient.get(f"sidstream:rec:{user}")
        return json.loads(raw) if raw else None


def start_served(env: dict[str, str], log: Path, models: Path, redis_url: str,
                 settings: Settings | None = None) -> Served:
    """Start a worker with ``env`` and wait until it is ready (its log tail on failure)."""
    worker = WorkerProcess(env, log, loglevel="info").start()
    try:
        worker.wait_ready(timeout_s=120)
    except Exception:
        print(log_tail(log))
        raise
    return Served(worker, models, redis.Redis.from_url(redis_url, decode_responses=True),
                  settings)
