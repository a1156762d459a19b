"""``sidstream demo``: embedded stack, a worker, a paced MovieLens replay with live progress,
sample lists and a summary counted at Redis.

By default the replay is paced at ``DEFAULT_RATE`` events/s, which one worker serving the demo
models keeps up with on two cores, so lists are written a fraction of a second after their
events, as in production. ``--fast`` replays as fast as the producer goes: the worker falls
behind and the progress lines show the backlog draining. Either way the run ends when every
replayed event is answered (its list in Redis, or coalesced into a later write of its user),
and freshness covers every list written, the last ones included.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import redis

from infra.embedded import embedded_stack, free_port
from infra.scrape import Snapshot, accounted
from infra.worker_process import WorkerProcess
from models.data.dataset import MOVIELENS, load_dataset
from streams.jobs.demo_models import ensure_demo_models
from streams.jobs.recs import fetch_recs, format_recs, titles
from streams.jobs.replay import ReplayConfig, interactions, run_replay
from streams.runtime.topics import ensure_topics
from streams.settings import Settings

log = logging.getLogger(__name__)

# events/s one worker with the demo models sustains on 2 cores with room to spare (measured: 494
# answered/s, at most 21 events queued, freshness p99 99 ms; --fast answered 3,611/s)
DEFAULT_RATE = 500.0
DEFAULT_LIMIT = 20_000  # events replayed by default (40 s at the default rate)
FRESHNESS = "sidstream_freshness_seconds"


@dataclass(frozen=True)
class DemoConfig:
    limit: int = DEFAULT_LIMIT  # 0: all of the data set
    rate: float = DEFAULT_RATE  # 0: as fast as the producer goes
    users: int = 3
    dataset: str = MOVIELENS
    models: bool = True  # train (once) and serve MovieLens recall + ranker artifacts
    progress_s: float = 2.0  # seconds between progress lines


def _model_dir(cfg: DemoConfig, workdir: Path) -> str:
    if "model_dir" in Settings.given():
        return str(Settings.from_env().models.model_dir)
    if cfg.models and cfg.dataset == MOVIELENS:
        return str(ensure_demo_models())
    return str(workdir / "models")


class Progress(threading.Thread):
    """Prints, every ``every_s``, what the worker answered since the last line: events answered
    and lists written per second, events still queued, freshness p99 of those lists."""

    def __init__(self, worker: WorkerProcess, every_s: float) -> None:
        super().__init__(daemon=True)
        self.worker, self.every_s = worker, every_s
        self.done = threading.Event()
        self.start_s = time.monotonic()
        self.max_queued = 0.0

    def run(self) -> None:
        prev, prev_t = self.worker.metrics(), time.monotonic()
        while not self.done.wait(self.every_s):
            snap, now = self.worker.metrics(), time.monotonic()
            print(self.line(snap, prev, now - prev_t), flush=True)
            prev, prev_t = snap, now

    def line(self, snap: Snapshot, prev: Snapshot, dt: float) -> str:
        lists = snap.total("sidstream_recs_written_total") - prev.total(
            "sidstream_recs_written_total")
        answered = accounted(snap) - accounted(prev)
        # unread by the worker + read but not answered yet
        queued = snap.total("sidstream_consumer_lag_messages") + max(
            0.0, snap.total("sidstream_events_total") - snap.total(
                "sidstream_events_accounted_total"))
        self.max_queued = max(self.max_queued, queued)
        p99 = snap.quantile(FRESHNESS, 0.99, since=prev) * 1000
        return (f"{time.monotonic() - self.start_s:6.0f} s  answered {answered / dt:7.0f} "
                f"events/s, {lists / dt:6.0f} lists/s, queued {queued:7.0f} events, "
                f"freshness p99 {p99:8.0f} ms")


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
            _run(cfg, settings, worker)
        finally:
            worker.stop()
    return 0


def _run(cfg: DemoConfig, settings: Settings, worker: WorkerProcess) -> None:
    before = worker.metrics()
    pace = f"{cfg.rate:g} events/s" if cfg.rate > 0 else "as fast as the producer goes"
    print(f"replaying {cfg.limit or 'all'} {cfg.dataset} events at {pace}; every "
          f"{cfg.progress_s:g} s what the worker answered:", flush=True)
    progress = Progress(worker, cfg.progress_s)
    progress.start()
    try:
        stats = run_replay(ReplayConfig(cfg.dataset, rate=cfg.rate, limit=cfg.limit), settings)
        print(f"replay done: {stats.events} events in {stats.seconds:.1f} s "
              f"({stats.rate:.0f}/s); waiting until every one is answered ...", flush=True)
        snap = worker.wait_accounted(accounted(before) + stats.events, timeout_s=900)
    finally:
        progress.done.set()
        progress.join()
    elapsed = time.monotonic() - progress.start_s
    _print_samples(settings, cfg)
    _print_summary(snap, before, stats.events, elapsed, stats.rate, progress.max_queued)


def _print_samples(settings: Settings, cfg: DemoConfig) -> None:
    """Lists of the users most active in the last tenth of the replay, with their freshness."""
    ds = load_dataset(cfg.dataset)
    todo = interactions(ds)[: cfg.limit or None]
    recent = todo[-max(1, len(todo) // 10):]
    users = [u for u, _ in Counter(it.user_id for it in recent).most_common(cfg.users)]
    client = redis.Redis.from_url(settings.redis.redis_url)
    for user in users:
        payload = fetch_recs(client, str(user))
        if payload is None:
            print(f"\nuser {user}: no list")
            continue
        last = [it.item_id for it in todo if it.user_id == user][-3:]
        print(f"\nuser {user}, recently: " + "; ".join(ds.items[i].title or str(i) for i in last))
        print(format_recs(payload, titles(client, [it["item_id"] for it in payload["items"]]),
                          limit=8))


def _print_summary(snap: Snapshot, before: Snapshot, events: int, elapsed: float,
                   offered: float, max_queued: float) -> None:
    lists = int(snap.total("sidstream_recs_written_total")
                - before.total("sidstream_recs_written_total"))
    summary = {
        "events_replayed": events,
        "offered_events_per_s": round(offered, 1),
        "answered_events_per_s": round(events / elapsed, 1),
        "events_coalesced": int(snap.get("sidstream_events_accounted_total",
                                         outcome="coalesced")),
        "lists_written": lists,
        "lists_written_per_s": round(lists / elapsed, 1),
        "max_queued_events": int(max_queued),
        "freshness_p50_ms": round(1000 * snap.quantile(FRESHNESS, 0.5, since=before), 1),
        "freshness_p99_ms": round(1000 * snap.quantile(FRESHNESS, 0.99, since=before), 1),
        "batch_p50_ms": round(1000 * snap.quantile("sidstream_stage_seconds", 0.5,
                                                   stage="batch"), 2),
        "events_invalid": int(snap.total("sidstream_events_invalid_total")),
        "events_duplicate": int(snap.total("sidstream_events_duplicate_total")),
        "redis_errors": int(snap.total("sidstream_redis_errors_total")),
    }
    print("\nmetrics summary (every event counted once its list is in Redis):")
    print(json.dumps(summary, indent=2))
    print(f"demo: {events} events answered in {elapsed:.1f} s "
          f"({summary['answered_events_per_s']}/s, offered {summary['offered_events_per_s']}/s), "
          f"{lists} lists ({summary['lists_written_per_s']}/s), freshness p50 "
          f"{summary['freshness_p50_ms']} ms, p99 {summary['freshness_p99_ms']} ms")
