"""``sidstream bench state``: what the user-state table costs per user, per store.

For each store (``memory``, ``rocksdb``) and each number of users, on a fresh embedded stack
(Tansu + redis-server) with one worker without models:

1. the users' states are written to the table's changelog (``streams/jobs/state_seed.py``:
   histories of realistic lengths, each state as the pipeline builds it);
2. a worker starts on an empty data dir and recovers them (``first_start``);
3. ``events`` clicks of those users go through it, produced as fast as the producer goes:
   events/s between 10 % and 90 % done, an event counting once its list is in Redis
   (``sidstream_events_accounted_total``, as ``bench stream`` counts), and the RSS after;
4. it is SIGKILLed after a commit and restarted on its local state (``restart_intact``; the
   memory store replays the whole changelog again), then, ``rocksdb`` only, on a wiped data dir
   (``restart_wiped``).

Each start reports the changelog records applied, faust's recovery seconds, the seconds from
process start to recovery start (start-up and the group join, which after a SIGKILL waits for
the dead member's session to expire: ``session_timeout_s``), from process start to ready, and
the RSS once ready. Across sizes: RSS bytes per user (the least-squares slope), the on-disk bytes
per user, records recovered per second, and the same figures extrapolated to ``EXTRAPOLATE_TO``
users; :func:`verdicts` says whether the issue's targets hold.

The worker writes its changelog in single-record batches (``SIDSTREAM_BROKER_KIND=tansu``, the
embedded default) so that every restart recovers exactly; ``bench stream`` measures the
batched producer a real Kafka gets.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.embedded import embedded_stack
from infra.procstat import memory_mb
from infra.scrape import accounted
from infra.worker_process import WorkerProcess
from streams.jobs.bench_stream import sample_accounted, sustained_rate
from streams.jobs.state_seed import history_lengths, seed_changelog
from streams.jobs.store_recovery import produce, start_measured, timed_start
from streams.runtime.topics import ensure_topics
from streams.settings import STORES, Settings

log = logging.getLogger(__name__)

BEAUTY = "../shared/data/amazon-beauty-2014"
EXTRAPOLATE_TO = 10_000_000
COMMIT_WAIT_S = 2.5  # past the worker's 1 s offset commit: a restart re-reads no events
INTACT_TARGET_S = 10.0  # the bound on start-to-ready with local state intact


@dataclass(frozen=True)
class StateBenchConfig:
    users: tuple[int, ...] = (100_000, 1_000_000)
    stores: tuple[str, ...] = ("memory", "rocksdb")
    events: int = 30_000  # clicks pushed through each case's worker
    items: int = 100_000  # catalogue the histories and the clicks draw from
    data: str = BEAUTY  # whose sequences give the history lengths
    session_timeout_s: float = 10.0  # the deployed default (SIDSTREAM_SESSION_TIMEOUT_S)
    wiped_restart: bool = True  # rocksdb: also restart on a wiped data dir
    # static group membership (SIDSTREAM_GROUP_INSTANCE_ID): a restart is the same member
    static_membership: bool = False
    # the rocksdb store's memory budget (SIDSTREAM_STATE_MEMORY_MB): its cache bound
    state_memory_mb: int = Settings().worker.state_memory_mb
    start_timeout_s: float = 1800.0
    seed: int = 0
    workdir: Path | None = None
    json: Path | None = None

    def __post_init__(self) -> None:
        unknown = set(self.stores) - set(STORES)
        if unknown or not self.stores:
            raise ValueError(f"stores must be among {', '.join(STORES)}: {self.stores}")
        if not self.users or min(self.users) <= 0 or self.events <= 0 or self.items <= 0 \
                or self.state_memory_mb <= 0:
            raise ValueError("users, events, items and state_memory_mb must be positive")


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def case_settings(stack_env: dict[str, str], store: str, root: Path,
                  cfg: StateBenchConfig) -> Settings:
    return Settings.from_env({
        **stack_env, "SIDSTREAM_APP_ID": "bench-state", "SIDSTREAM_MODELS": "false",
        "SIDSTREAM_MODEL_DIR": str(root / "models"), "SIDSTREAM_METRICS_PORT": "",
        "SIDSTREAM_STORE": store, "SIDSTREAM_DATA_DIR": str(root / "data"),
        "SIDSTREAM_SESSION_TIMEOUT_S": str(cfg.session_timeout_s),
        "SIDSTREAM_STATE_MEMORY_MB": str(cfg.state_memory_mb),
        "SIDSTREAM_MEMORY_REFRESH_S": "2",  # the state_cache gauge read after the events
        "SIDSTREAM_GROUP_INSTANCE_ID": "bench-state-0" if cfg.static_membership else ""})


def push_events(worker: WorkerProcess, settings: Settings, users: int,
                cfg: StateBenchConfig) -> dict[str, Any]:
    """``cfg.events`` clicks of existing users through the worker, until all are accounted."""
    n, base = cfg.events, accounted(worker.metrics())
    sender = threading.Thread(target=produce, args=(settings, users, n, cfg.seed + 1,
                                                    cfg.items))
    t0 = time.monotonic()
    sender.start()
    try:
        samples = sample_accounted(worker, base, n, t0, max(600.0, n / 100), "bench state")
        wall = time.monotonic() - t0
    finally:
        sender.join()
    assert worker.proc is not None
    rss, peak = memory_mb(worker.proc.pid)
    time.sleep(1.0)  # the users gauge is refreshed every second
    snap = worker.metrics()
    return {"events": n, "seconds": round(wall, 1),
            "events_per_s": round(sustained_rate(samples, n), 1), "rss_mb": rss,
            "peak_rss_mb": peak, "users_in_state": int(snap.total("sidstream_users_in_state")),
            # RocksDB's shared cache, memtables included (refreshed every memory_refresh_s)
            "state_cache_mb": round(snap.get("sidstream_memory_bytes",
                                             component="state_cache") / 2**20, 1)}


def restarts(settings: Settings, root: Path, cfg: StateBenchConfig) -> dict[str, Any]:
    """After the SIGKILL: a start on the local state left, then (rocksdb) on a wiped one."""
    out: dict[str, Any] = {}
    data = settings.worker.data_dir
    if settings.worker.store == "rocksdb":
        out["disk_bytes"] = dir_bytes(data)
    log.info("restart on intact local state")
    out["restart_intact"] = timed_start(settings.env(), root / "intact.log")
    if settings.worker.store == "rocksdb" and cfg.wiped_restart:
        shutil.rmtree(data)
        log.info("restart on a wiped data dir")
        out["restart_wiped"] = timed_start(settings.env(), root / "wiped.log")
    return out


def measure_case(cfg: StateBenchConfig, store: str, users: int, lengths: list[int],
                 root: Path) -> dict[str, Any]:
    """One store at one size, on an embedded stack of its own."""
    root.mkdir(parents=True, exist_ok=True)
    with embedded_stack({}) as stack:
        settings = case_settings(stack.env(), store, root, cfg)
        ensure_topics(settings)
        log.info("%s, %d users: seeding the changelog", store, users)
        seeded = seed_changelog(settings, users, lengths, cfg.items, cfg.seed)
        out: dict[str, Any] = {"store": store, "users": users, "seed": asdict(seeded)}
        log.info("%s, %d users: first start (%.0f s seeding)", store, users, seeded.seconds)
        worker, out["first_start"] = start_measured(settings.env(), root / "first.log",
                                                    cfg.start_timeout_s)
        try:
            log.info("%s, %d users: %d events through the worker", store, users, cfg.events)
            out["stream"] = push_events(worker, settings, users, cfg)
            time.sleep(COMMIT_WAIT_S)
        finally:
            worker.kill()
        out.update(restarts(settings, root, cfg))
    shutil.rmtree(settings.worker.data_dir, ignore_errors=True)  # GBs at 1M users; logs stay
    log.info("%s, %d users: %s (logs in %s)", store, users, case_line(out), root)
    return out


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of ``(x, y)`` points; None below two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)


def extrapolate(points: list[tuple[float, float]], to: float) -> float | None:
    """``y`` at ``to`` along the least-squares line through ``points``."""
    m = slope(points)
    if m is None:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    return my + m * (to - mx)


def recovery_rate(start: dict[str, Any]) -> float | None:
    """Changelog records applied per second of a start's recovery."""
    secs = start.get("recovery_s")
    return start["restored_records"] / secs if secs and start["restored_records"] else None


# figures of a case that grow with its users: (name, unit scale of the slope, getter); the
# first start recovers a compacted changelog (one record per user), the restarts read the
# event stream's records too
LINEAR: tuple[tuple[str, float, Any], ...] = (
    ("rss_ready_mb", 2**20, lambda c: c["first_start"]["rss_mb"]),
    ("rss_after_events_mb", 2**20, lambda c: c["stream"]["rss_mb"]),
    ("disk_bytes", 1.0, lambda c: c.get("disk_bytes")),
    ("first_start_recovery_s", 1.0, lambda c: c["first_start"]["recovery_s"]),
    ("intact_open_s", 1.0, lambda c: c["restart_intact"]["open_s"]),
    ("intact_ready_s", 1.0, lambda c: c["restart_intact"]["ready_s"]),
)


def store_summary(cases: list[dict[str, Any]], to: int = EXTRAPOLATE_TO) -> dict[str, Any]:
    """One store's figures across sizes: each growing figure's slope per user (bytes, or
    seconds) and its value at ``to`` users along the least-squares line; records recovered
    per second by the first start."""
    out: dict[str, Any] = {}
    for name, scale, get in LINEAR:
        pts = [(float(c["users"]), float(get(c))) for c in cases if get(c) is not None]
        m, at = slope(pts), extrapolate(pts, to)
        out[name] = {"per_user": None if m is None else float(f"{m * scale:.4g}"),
                     f"at_{to}": None if at is None else round(at, 1)}
    rates = [r for r in (recovery_rate(c["first_start"]) for c in cases) if r]
    out["recovery_records_per_s"] = round(min(rates), 1) if rates else None
    return out


def verdicts(cases: list[dict[str, Any]], bound_mb: float) -> dict[str, dict[str, Any]]:
    """The issue's targets on the rocksdb store: RSS growth across sizes within the store's
    memory budget (``bound_mb``), and a restart on intact local state under 10 s at every
    size."""
    disk = sorted((c for c in cases if c["store"] == "rocksdb"), key=lambda c: c["users"])
    out: dict[str, dict[str, Any]] = {}
    if len(disk) >= 2:
        growth = max(c["stream"]["rss_mb"] for c in disk) - disk[0]["stream"]["rss_mb"]
        out["rocksdb_rss_growth_mb"] = {"value": round(growth, 1), "target": round(bound_mb, 1),
                                        "rule": "<=", "ok": growth <= bound_mb}
    if disk:
        for what in ("ready_s", "recovery_s"):
            worst = max(c["restart_intact"][what] or 0.0 for c in disk)
            out[f"rocksdb_intact_{what}"] = {"value": worst, "target": INTACT_TARGET_S,
                                             "rule": "<", "ok": worst < INTACT_TARGET_S}
    return out


def _start_part(start: dict[str, Any] | None) -> str:
    if start is None:
        return "-"
    return (f"{start['restored_records']} rec, recovery {start['recovery_s']} s, "
            f"open {start['open_s']} s, ready {start['ready_s']} s (join {start['join_s']} s), "
            f"{start['rss_mb']:.0f} MB")


def case_line(c: dict[str, Any]) -> str:
    return (f"{c['store']} {c['users']} users: ready {c['first_start']['rss_mb']:.0f} MB, "
            f"after events {c['stream']['rss_mb']:.0f} MB, {c['stream']['events_per_s']:.0f} "
            f"ev/s; intact restart {_start_part(c['restart_intact'])}; wiped restart "
            f"{_start_part(c.get('restart_wiped'))}")


def summary_line(doc: dict[str, Any]) -> str:
    parts = [f"{c['store']}@{c['users']}: {c['first_start']['rss_mb']:.0f}/"
             f"{c['stream']['rss_mb']:.0f} MB, {c['stream']['events_per_s']:.0f} ev/s, "
             f"intact ready {c['restart_intact']['ready_s']} s" for c in doc["cases"]]
    ok = [f"{k} {'met' if v['ok'] else 'MISSED'}" for k, v in doc["verdicts"].items()]
    return "bench state: " + "; ".join(parts) + (" | " + ", ".join(ok) if ok else "")


def run_bench_state(cfg: StateBenchConfig) -> dict[str, Any]:
    lengths = history_lengths(Path(cfg.data) / "sequences.txt")
    root = cfg.workdir or Path(tempfile.mkdtemp(prefix="sidstream-bench-state-"))
    doc: dict[str, Any] = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(), "mean_history": round(sum(lengths) / len(lengths), 2),
        "cases": []}
    doc["cache_bound_mb"] = cfg.state_memory_mb
    for users in sorted(cfg.users):
        for store in cfg.stores:
            doc["cases"].append(measure_case(cfg, store, users, lengths,
                                             root / f"{store}-{users}"))
            _write(doc, cfg.json)  # what is measured so far survives a later failure
    doc["stores"] = {s: store_summary([c for c in doc["cases"] if c["store"] == s])
                     for s in cfg.stores}
    doc["verdicts"] = verdicts(doc["cases"], cfg.state_memory_mb)
    _write(doc, cfg.json)
    print(summary_line(doc), flush=True)
    return doc


def _write(doc: dict[str, Any], path: Path | None) -> None:
    if path is not None:
        path.write_text(json.dumps(doc, indent=2) + "\n")
