"""Throughput of ``GenerativeRecaller.recall`` (users/s) on real histories."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import torch

from models.data.dataset import load_dataset
from models.recall.beam import SEARCH_CHUNK
from models.recall.data import leave_one_out, make_batch
from models.recall.recaller import GenerativeRecaller

log = logging.getLogger(__name__)


def bench_recall(artifact: str | Path, data: str | Path, users: int = 4096,
                 batch_size: int = SEARCH_CHUNK, beam: int = 20, k: int = 10, exclude: bool = False,
                 int8: bool = False) -> dict[str, Any]:
    """Recall for the first ``users`` test histories (one warm-up batch first); ``int8``:
    quantized linear layers (``GenerativeRecaller.quantize``), as the worker serves."""
    rec = GenerativeRecaller.load(artifact)
    if int8:
        rec.quantize()
    split = leave_one_out(load_dataset(data), "test", rec.max_hist)
    hist = split.histories[:users]
    seen = split.seen[:users] if exclude else None
    rec.recall(hist[:batch_size], k=k, beam=beam, batch_size=batch_size)  # warm-up
    t0 = time.perf_counter()
    rec.recall(hist, k=k, beam=beam, exclude=seen, batch_size=batch_size)
    dt = time.perf_counter() - t0
    prefill_s, tokens = _prefill_only(rec, hist, batch_size)
    # users coming back with one more item: their earlier history is in the prefix cache
    rec.enable_prefix_cache(10**9)
    keys = list(range(len(hist)))
    rec.recall([h[:-1] for h in hist], k=k, beam=beam, batch_size=batch_size, keys=keys)
    t0 = time.perf_counter()
    rec.recall(hist, k=k, beam=beam, exclude=seen, batch_size=batch_size, keys=keys)
    dt_inc = time.perf_counter() - t0
    cfg = rec.model.cfg
    res = {"users": len(hist), "seconds": round(dt, 3), "users_per_s": round(len(hist) / dt, 1),
           "beam": beam, "k": k, "batch_size": batch_size, "exclude": exclude, "int8": int8,
           "threads": torch.get_num_threads(),
           # what a per-user cache of encoded histories could save at most, and would cost
           "prefill_share": round(prefill_s / dt, 3),
           "users_per_s_prefix_cached": round(len(hist) / dt_inc, 1),
           "mean_prefix_tokens": round(tokens / len(hist), 1),
           "kv_kb_per_user": round(tokens / len(hist) * cfg.n_layers * 2 * cfg.d_model * 4
                                   / 1024, 1)}
    res["users_per_s_next_to_busy_thread"] = round(len(hist) / _contended(rec, hist, beam, k,
                                                                          batch_size), 1)
    log.info("recall bench: %.0f users/s (beam %d, top-%d, batch %d, %d threads); history "
             "encoding %.0f%% of it (%.0f tokens/user, KV %.0f kB/user); %.0f users/s when the "
             "history but its last item is in the prefix cache", res["users_per_s"], beam, k,
             batch_size, res["threads"], 100 * res["prefill_share"], res["mean_prefix_tokens"],
             res["kv_kb_per_user"], res["users_per_s_prefix_cached"])
    log.info("next to a busy Python thread in the same process: %.0f users/s (the GIL: why the "
             "worker searches in a child process)", res["users_per_s_next_to_busy_thread"])
    return res


def _contended(rec: GenerativeRecaller, hist: list[list[int]], beam: int, k: int,
               batch_size: int) -> float:
    """Seconds to search the first 256 histories while another thread runs Python code, as a
    stream worker's event loop does (scaled to all of them)."""
    part = hist[:256]
    stop = threading.Event()

    def busy() -> None:
        x = 0
        while not stop.is_set():
            for i in range(1000):
                x += i

    t = threading.Thread(target=busy, daemon=True)
    t.start()
    try:
        t0 = time.perf_counter()
        rec.recall(part, k=k, beam=beam, batch_size=batch_size)
        return (time.perf_counter() - t0) * len(hist) / len(part)
    finally:
        stop.set()
        t.join()


@torch.no_grad()
def _prefill_only(rec: GenerativeRecaller, hist: list[list[int]], batch_size: int
                  ) -> tuple[float, int]:
    """Seconds to encode the histories alone (the part a prefix cache would skip), tokens."""

    rows = rec.prefixes(hist)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    t0, tokens = time.perf_counter(), 0
    for s in range(0, len(rows), batch_size):
        batch, lengths = make_batch([rows[i] for i in order[s: s + batch_size]], rec.tokens,
                                    rec.cfg, train=False)
        rec.model(batch.tok, batch.pos, batch.iid)
        tokens += int(lengths.sum())
    return time.perf_counter() - t0, tokens
