"""``sidstream bench rank``: torch eager vs onnxruntime on the same batches, side by side.

Each measured call is the full serving path of ``RankerSession.score`` / ``TorchRanker.score``:
the host part (histories cut to ``max_hist``, dtypes) + the serving graph, which gathers the
item feature rows and computes the user context itself (the same graph for both backends).
Batches hold ``total`` candidates as ``total / cands_per_user`` users with ``cands_per_user``
candidates each and random histories.
Both backends run with the same intra-op thread count (1 = "per core").
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from export.onnx_export import export_onnx
from export.serving import RankBatch, RankerSession, TorchRanker
from models.data.dataset import ItemMeta
from models.rank.artifact import load_artifact
from models.rank.features import EVENT_IDS, ItemFeatures
from models.rank.model import Ranker, RankerConfig

log = logging.getLogger(__name__)


@dataclass
class BenchConfig:
    sizes: tuple[int, ...] = (100, 1_000, 10_000)  # candidates per call
    cands_per_user: int = 100
    threads: int = 1  # intra-op threads for both backends
    seconds: float = 2.0  # timed per backend and size (calls of the two backends alternate)
    min_reps: int = 20
    artifact: str | None = None  # None: a freshly initialised default-config model
    seed: int = 0


class BenchRow(NamedTuple):
    backend: str
    cands: int
    users: int
    p50_ms: float
    p99_ms: float
    cands_per_s: float


def synthetic_features(cfg: RankerConfig, seed: int) -> ItemFeatures:
    """A catalogue of ``cfg.n_items`` items with random category / brand / price / SID rows."""
    rng = np.random.default_rng(seed)
    cats = {f"c{i}": i for i in range(1, cfg.n_categories)}
    brands = {f"b{i}": i for i in range(1, cfg.n_brands)}
    edges = np.linspace(0.0, 6.0, max(cfg.n_price_buckets - 2, 0))
    feats = ItemFeatures.empty(cfg.n_items, cats, brands, edges, cfg.n_sid_levels, cfg.sid_vocab)
    sid = rng.integers(0, cfg.sid_vocab - 1, (cfg.n_items + 1, cfg.n_sid_levels))
    for item in range(1, cfg.n_items + 1):
        meta = ItemMeta(item, brand=f"b{rng.integers(1, cfg.n_brands)}",
                        categories=((f"c{rng.integers(1, cfg.n_categories)}",),),
                        price=float(np.exp(rng.uniform(0, 6))))
        feats.upsert(item, meta, sid[item])
    return feats


def load_model(bc: BenchConfig, workdir: Path) -> tuple[Ranker, ItemFeatures, Path, str]:
    """(model, features, onnx path, description) from an artifact or freshly initialised."""
    if bc.artifact:
        art = load_artifact(bc.artifact)
        return art.model, art.features, art.onnx_path, f"artifact {art.directory}"


    torch.manual_seed(bc.seed)
    model = Ranker(RankerConfig()).eval()
    onnx_path = export_onnx(model, workdir / "ranker.onnx")
    return (model, synthetic_features(model.cfg, bc.seed), onnx_path,
            "freshly initialised default RankerConfig (untrained; synthetic catalogue)")


def make_batch(features: ItemFeatures, total: int, per_user: int, max_hist: int,
               rng: np.random.Generator) -> RankBatch:
    users = max(1, total // per_user)
    n_items = features.n_trained_items
    lengths = rng.integers(0, max_hist + 1, users)
    hist = rng.integers(1, n_items + 1, (users, max_hist))
    hist[np.arange(max_hist)[None, :] < (max_hist - lengths)[:, None]] = 0
    events = np.where(hist > 0, rng.choice(list(EVENT_IDS.values()), hist.shape), 0)
    age = rng.exponential(3600.0, users)
    return RankBatch(hist, events, age, rng.integers(1, n_items + 1, (users, total // users)))


def time_interleaved(fns: list[Callable[[RankBatch], object]], batch: RankBatch, seconds: float,
                     min_reps: int) -> list[np.ndarray]:
    """Latencies (s) of each of ``fns`` on ``batch``, calls alternating after a warm-up.

    Alternating keeps background load (a shared machine) from favouring either backend.
    """
    for fn in fns:
        for _ in range(3):
            fn(batch)
    out: list[list[float]] = [[] for _ in fns]
    start = time.perf_counter()
    while len(out[0]) < min_reps or time.perf_counter() - start < seconds * len(fns):
        for fn, lat in zip(fns, out, strict=True):
            t = time.perf_counter()
            fn(batch)
            lat.append(time.perf_counter() - t)
    return [np.array(lat) for lat in out]


def row(backend: str, batch: RankBatch, lat: np.ndarray) -> BenchRow:
    cands = int(batch.cand_items.size)
    return BenchRow(backend, cands, len(batch.cand_items), 1e3 * float(np.percentile(lat, 50)),
                    1e3 * float(np.percentile(lat, 99)), cands / float(lat.mean()))


def run_bench(bc: BenchConfig) -> tuple[list[BenchRow], str]:
    """Time both backends at every size; returns the rows and the model description."""

    prev = torch.get_num_threads()
    torch.set_num_threads(bc.threads)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            model, features, onnx_path, source = load_model(bc, Path(tmp))
            ort = RankerSession(onnx_path, features, model.cfg.max_hist,
                                intra_op_threads=bc.threads, prefer_cuda=False)
            eager = TorchRanker(model, features)
            rng = np.random.default_rng(bc.seed)
            rows = []
            for total in bc.sizes:
                batch = make_batch(features, total, bc.cands_per_user, model.cfg.max_hist, rng)
                lat = time_interleaved([eager.score, ort.score], batch, bc.seconds, bc.min_reps)
                rows += [row("torch", batch, lat[0]), row("onnxruntime", batch, lat[1])]
    finally:
        torch.set_num_threads(prev)
    return rows, source


def format_table(rows: list[BenchRow], bc: BenchConfig, source: str) -> str:
    by = {(r.backend, r.cands): r for r in rows}
    lines = [f"ranker: {source}",
             f"threads {bc.threads} (intra-op, both backends), {bc.cands_per_user} candidates "
             "per user, full score() path (host prep + graph incl. feature gather)",
             f"{'cands':>7} {'users':>5} | {'torch p50':>9} {'p99':>7} {'cands/s':>10} | "
             f"{'ORT p50':>8} {'p99':>7} {'cands/s':>10} | {'ORT/torch':>9}"]
    for size in sorted({r.cands for r in rows}):
        t, o = by[("torch", size)], by[("onnxruntime", size)]
        lines.append(f"{size:>7,} {t.users:>5} | {t.p50_ms:>7.3f}ms {t.p99_ms:>5.2f}ms "
                     f"{t.cands_per_s:>10,.0f} | {o.p50_ms:>6.3f}ms {o.p99_ms:>5.2f}ms "
                     f"{o.cands_per_s:>10,.0f} | {o.cands_per_s / t.cands_per_s:>8.2f}x")
    lines += targets(by, bc.threads)
    return "\n".join(lines)


def targets(by: dict[tuple[str, int], BenchRow], threads: int) -> list[str]:
    out = []
    if ("onnxruntime", 1000) in by:
        ratio = by[("onnxruntime", 1000)].cands_per_s / by[("torch", 1000)].cands_per_s
        out.append(f"target ORT >= 2x torch eager at 1,000: {ratio:.2f}x "
                   f"{'PASS' if ratio >= 2 else 'FAIL'}")
    if ("onnxruntime", 10000) in by:
        per_core = by[("onnxruntime", 10000)].cands_per_s / threads
        out.append(f"target ORT >= 200,000 cands/s per core at 10,000: {per_core:,.0f} "
                   f"{'PASS' if per_core >= 200_000 else 'FAIL'}")
    return out
