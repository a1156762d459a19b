"""``sidstream demo``: embedded stack, a worker, a MovieLens replay, sample lists and a summary."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import redis

from infra.embedded import embedded_stack, free_port
from infra.scrape import Snapshot
from infra.worker_process import WorkerProcess
from models.data.dataset import MOVIELENS, load_dataset
from streams.jobs.demo_models import ensure_demo_models
from streams.jobs.recs import fetch_recs, format_recs, titles
from streams.jobs.replay import ReplayConfig, interactions, run_replay
from streams.runtime.topics import ensure_topics
from streams.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    limit: int = 0
    rate: float = 0.0
    users: int = 3
    dataset: str = MOVIELENS
    models: bool = True  # train (once) and serve MovieLens recall + ranker artifacts


def _model_dir(cfg: DemoConfig, workdir: Path) -> str:
    if "model_dir" in Settings.given():
        return str(Settings.from_env().models.model_dir)
    if cfg.models and cfg.dataset == MOVIELENS:
        return str(ensure_demo_models())
    return str(workdir / "models")


def run_demo(cfg: DemoConfig) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="sidstream-demo-"))
    model_dir = _model_dir(cfg, workdir)
    with embedded_stack() as stack:
        env = {**stack.env(), "SIDSTREAM_METRICS_PORT": str(free_port()),
               "SIDSTREAM_DATA_DIR": str(workdir / "faust"),
               "SIDSTREAM_MODEL_DIR": model_dir}
        settings = Settings.from_env(env)
        ensure_topics(settings)
        worker = WorkerProcess(env, workdir / "worker.log").start()
        try:
            print(f"worker starting (log {workdir / 'worker.log'}) ...", flush=True)
            worker.wait_ready(timeout_s=90)
            start = time.monotonic()
            stats = run_replay(ReplayConfig(cfg.dataset, rate=cfg.rate, limit=cfg.limit),
                               settings)
            snap = worker.wait_processed(stats.events, timeout_s=600)
            elapsed = time.monotonic() - start
            _print_samples(settings, cfg)
            _print_summary(snap, stats.events, elapsed, stats.rate)
        finally:
            worker.stop()
    return 0


def _print_samples(settings: Settings, cfg: DemoConfig) -> None:
    ds = load_dataset(cfg.dataset)
    todo = interactions(ds)[: cfg.limit or None]
    busiest = [u for u, _ in Counter(it.user_id for it in todo).most_common(cfg.users)]
    client = redis.Redis.from_url(settings.redis.redis_url)
    for user in busiest:
        payload = fetch_recs(client, str(user))
        if payload is None:
            print(f"\nuser {user}: no list")
            continue
        recent = [it.item_id for it in todo if it.user_id == user][-3:]
        print(f"\nuser {user}, recently: "
              + "; ".join(ds.items[i].title or str(i) for i in recent))
        print(format_recs(payload, titles(client, [it["item_id"] for it in payload["items"]]),
                          limit=8))


def _print_summary(snap: Snapshot, events: int, elapsed: float, offered: float) -> None:
    summary = {
        "events_replayed": events,
        "events_applied": int(snap.total("sidstream_events_total")),
        "events_invalid": int(snap.total("sidstream_events_invalid_total")),
        "events_duplicate": int(snap.total("sidstream_events_duplicate_total")),
        "lists_written": int(snap.total("sidstream_recs_written_total")),
        "end_to_end_events_per_s": round(events / elapsed, 1),
        "offered_events_per_s": round(offered, 1),
        "freshness_p50_ms": round(1000 * snap.quantile("sidstream_freshness_seconds", 0.5), 1),
        "freshness_p99_ms": round(1000 * snap.quantile("sidstream_freshness_seconds", 0.99), 1),
        "batch_p50_ms": round(1000 * snap.quantile("sidstream_stage_seconds", 0.5,
                                                   stage="batch"), 2),
        "redis_errors": int(snap.total("sidstream_redis_errors_total")),
    }
    print("\nmetrics summary:")
    print(json.dumps(summary, indent=2))
    print(f"demo: {events} events in {elapsed:.1f}s ({summary['end_to_end_events_per_s']}/s), "
          f"freshness p50 {summary['freshness_p50_ms']} ms, p99 {summary['freshness_p99_ms']} ms")
