"""``sidstream bench rank-cuda``: the ranker on CUDA against the CPU, where a GPU is lent.

For a GPU host (``pip install 'sidstream[gpu]'``, onnxruntime-gpu): builds two onnxruntime
sessions over the same ONNX graph and feature table, one on CPU and one on CUDA, and on batches
of every size reports the largest score difference (parity: within ``tolerance``) and each
session's latency and candidates/s, calls alternating. Without a usable CUDA device it says why
and exits 2; it never falls back silently (the worker does: ``export.serving.choose_providers``).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export.bench import BenchConfig, load_model, make_batch, row, time_interleaved
from export.serving import CUDA, RankerSession, choose_providers, import_onnxruntime
from models.rank.features import ItemFeatures

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CudaCheckConfig:
    sizes: tuple[int, ...] = (100, 1_000, 10_000)  # candidates per call
    cands_per_user: int = 100
    threads: int = 1  # intra-op threads of the CPU session
    seconds: float = 2.0  # timed per session and size
    min_reps: int = 20
    tolerance: float = 1e-4  # largest |CPU - CUDA| score difference accepted
    artifact: str | None = None  # None: a freshly initialised default-config model
    seed: int = 0


class CudaUnavailable(RuntimeError):
    """No usable CUDA device for onnxruntime here (the reason is the message)."""


def cuda_reason() -> str:
    """Why onnxruntime cannot run on CUDA here; empty when it can."""
    ort = import_onnxruntime()
    if CUDA not in ort.get_available_providers():
        return (f"onnxruntime {ort.__version__} has no CUDA provider (install "
                "'sidstream[gpu]', onnxruntime-gpu, in place of onnxruntime)")
    if choose_providers(True)[0] != CUDA:
        return "onnxruntime offers CUDA, but no CUDA device is usable here"
    return ""


def compare(a: RankerSession, b: RankerSession, features: ItemFeatures, max_hist: int,
            cfg: CudaCheckConfig) -> list[dict[str, Any]]:
    """Per size: the largest score difference between the sessions and the timing of each."""
    rng = np.random.default_rng(cfg.seed)
    rows = []
    for total in cfg.sizes:
        batch = make_batch(features, total, cfg.cands_per_user, max_hist, rng)
        diff = max(float(np.abs(x - y).max()) for x, y in zip(a.score(batch), b.score(batch),
                                                               strict=True))
        lat = time_interleaved([a.score, b.score], batch, cfg.seconds, cfg.min_reps)
        ra, rb = row(a.providers[0], batch, lat[0]), row(b.providers[0], batch, lat[1])
        rows.append({"cands": ra.cands, "users": ra.users, "max_abs_diff": diff,
                     "parity_ok": diff <= cfg.tolerance, "a": ra._asdict(), "b": rb._asdict(),
                     "speedup": rb.cands_per_s / ra.cands_per_s})
        log.info("%d candidates: max |diff| %.2e, %s %.0f cands/s, %s %.0f cands/s",
                 ra.cands, diff, ra.backend, ra.cands_per_s, rb.backend, rb.cands_per_s)
    return rows


def run_cuda_check(cfg: CudaCheckConfig) -> dict[str, Any]:
    """CPU vs CUDA session on the same graph; raises ``CudaUnavailable`` without a device."""
    reason = cuda_reason()
    if reason:
        raise CudaUnavailable(reason)
    with tempfile.TemporaryDirectory() as tmp:
        bc = BenchConfig(artifact=cfg.artifact, seed=cfg.seed)
        model, features, onnx_path, source = load_model(bc, Path(tmp))
        max_hist = model.cfg.max_hist
        cpu = RankerSession(onnx_path, features, max_hist, intra_op_threads=cfg.threads,
                            prefer_cuda=False)
        gpu = RankerSession(onnx_path, features, max_hist, prefer_cuda=True)
        if gpu.providers[0] != CUDA:
            raise CudaUnavailable(f"the CUDA session fell back to {gpu.providers[0]}")
        rows = compare(cpu, gpu, features, max_hist, cfg)
    return {"source": source, "providers": {"a": cpu.providers, "b": gpu.providers},
            "onnxruntime": import_onnxruntime().__version__, "tolerance": cfg.tolerance,
            "parity_ok": all(r["parity_ok"] for r in rows), "rows": rows}


def format_rows(result: dict[str, Any]) -> str:
    lines = [f"ranker: {result['source']}; onnxruntime {result['onnxruntime']}",
             f"{'cands':>7} {'max |diff|':>10} | {'CPU p50':>8} {'cands/s':>10} | "
             f"{'CUDA p50':>8} {'cands/s':>10} | {'CUDA/CPU':>8}"]
    for r in result["rows"]:
        a, b = r["a"], r["b"]
        lines.append(f"{r['cands']:>7,} {r['max_abs_diff']:>10.2e} | {a['p50_ms']:>6.3f}ms "
                     f"{a['cands_per_s']:>10,.0f} | {b['p50_ms']:>6.3f}ms "
                     f"{b['cands_per_s']:>10,.0f} | {r['speedup']:>7.2f}x")
    ok = "PASS" if result["parity_ok"] else "FAIL"
    lines.append(f"parity within {result['tolerance']:g}: {ok}")
    return "\n".join(lines)
