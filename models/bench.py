"""Throughput of ``GenerativeRecaller.recall`` (users/s) on real histories."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from models.dataset import load_dataset
from models.recall_data import leave_one_out
from models.recaller import GenerativeRecaller

log = logging.getLogger(__name__)


def bench_recall(artifact: str | Path, data: str | Path, users: int = 4096,
                 batch_size: int = 256, beam: int = 20, k: int = 10, exclude: bool = False
                 ) -> dict[str, Any]:
    """Recall for the first ``users`` test histories (one warm-up batch first)."""
    rec = GenerativeRecaller.load(artifact)
    split = leave_one_out(load_dataset(data), "test", rec.max_hist)
    hist = split.histories[:users]
    seen = split.seen[:users] if exclude else None
    rec.recall(hist[:batch_size], k=k, beam=beam, batch_size=batch_size)  # warm-up
    t0 = time.perf_counter()
    rec.recall(hist, k=k, beam=beam, exclude=seen, batch_size=batch_size)
    dt = time.perf_counter() - t0
    res = {"users": len(hist), "seconds": round(dt, 3), "users_per_s": round(len(hist) / dt, 1),
           "beam": beam, "k": k, "batch_size": batch_size, "exclude": exclude,
           "threads": torch.get_num_threads()}
    log.info("recall bench: %.0f users/s (beam %d, top-%d, batch %d, %d threads)",
             res["users_per_s"], beam, k, batch_size, res["threads"])
    return res
