"""What a restarted worker reads and how long it takes, per table store: ``python -m
streams.jobs.store_recovery --users 50000 --events 150000 --json out.json``.

One worker on the disk store (``SIDSTREAM_STORE=rocksdb``, no models) applies ``events`` clicks
of ``users`` users through the embedded stack, idles past a commit and is SIGKILLed; then
workers are started and killed in turn: on that intact data dir, on a wiped one, and on the
in-memory store (which always replays the whole changelog). Each start reports the changelog
records it applied (``sidstream_state_restored_records_total``), the seconds from faust's
first recovery log line to "Recovery complete", the seconds from process start to ready, and
its resident memory once ready.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from infra.embedded import embedded_stack
from infra.procstat import memory_mb
from infra.worker_process import WorkerProcess
from streams.contracts.events import Event, event_to_json
from streams.jobs.chaos import TABLE_CHANGELOG
from streams.runtime.topics import ensure_topics
from streams.settings import EVENTS_TOPIC, Settings

LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")
RECOVERY_START = "Highwater for active changelog partitions"
RECOVERY_END = "Recovery complete"
OPENING = "opening partition"  # faust's rocksdb store, per table partition it opens


def recovery_window(log_text: str) -> tuple[datetime, datetime, datetime] | None:
    """(tables opened, start, end) of faust's last recovery in a worker's info log, in its
    local time; "opened": when the first table partition of that assignment began to open
    (the rocksdb store reads each database whole), the start where there is none."""
    opening = opened = start = end = None
    lines = log_text.splitlines()
    for i, line in enumerate(lines):
        stamp = LOG_TIME.match(line)
        if stamp is None:
            continue
        at = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f")
        if OPENING in line:
            opening = opening or at
        elif RECOVERY_START in "\n".join(lines[i:i + 2]):
            opened, start, end = opening or at, at, None
        elif RECOVERY_END in line and start is not None:
            end, opening = at, None
    if opened is None or start is None or end is None:
        return None
    return opened, start, end


def recovery_seconds(log_text: str) -> float | None:
    """Seconds between faust's last recovery start and its end in a worker's info log."""
    window = recovery_window(log_text)
    return None if window is None else (window[2] - window[1]).total_seconds()


def produce(settings: Settings, users: int, events: int, seed: int, items: int = 5000) -> None:
    """``events`` clicks of users ``u0`` .. ``u<users-1>`` (drawn at random) on random items."""
    rng = random.Random(seed)
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks=1,
                             linger_ms=5, batch_size=1 << 16)
    base = int(time.time() * 1000)
    for i in range(events):
        ev = Event(uuid.uuid4().hex, f"u{rng.randrange(users)}", rng.randrange(items), "click",
                   base + i)
        producer.send(EVENTS_TOPIC, key=ev.user_key.encode(), value=event_to_json(ev))
    producer.flush()
    producer.close()


def changelog_records(settings: Settings) -> int:
    topic = TABLE_CHANGELOG.format(app_id=settings.kafka.app_id)
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.kafka.topic_partitions)]
        return int(sum(consumer.end_offsets(parts).values()))
    finally:
        consumer.close()


def start_measured(env: dict[str, str], log: Path, timeout_s: float = 900.0
                   ) -> tuple[WorkerProcess, dict[str, Any]]:
    """Start a worker, wait until ready and read what it restored; the worker runs on.
    ``join_s``: process start to faust's recovery start (start-up and the group join)."""
    log.unlink(missing_ok=True)
    worker = WorkerProcess(env, log, loglevel="info")
    start, wall = time.monotonic(), datetime.now()
    worker.start().wait_ready(timeout_s=timeout_s)
    ready_s = time.monotonic() - start
    time.sleep(1.0)  # the users gauge is refreshed every second
    snap = worker.metrics()
    assert worker.proc is not None
    rss, _ = memory_mb(worker.proc.pid)
    return worker, {
        "restored_records": int(snap.total("sidstream_state_restored_records_total")),
        **log_times(log.read_text(errors="replace"), wall),
        "ready_s": round(ready_s, 1), "rss_mb": rss,
        "users_in_state": int(snap.total("sidstream_users_in_state")),
        "discarded": int(snap.total("sidstream_state_discarded_total"))}


def log_times(log_text: str, started: datetime) -> dict[str, float | None]:
    """Seconds of a start from its log (``started``: the process start, local time):
    ``join_s`` to the table partitions' opening (start-up and the group join), ``open_s`` the
    opening, ``recovery_s`` faust's recovery."""
    window = recovery_window(log_text)
    if window is None:
        return {"join_s": None, "open_s": None, "recovery_s": None}
    opened, start, end = window
    return {"join_s": round((opened - started).total_seconds(), 1),
            "open_s": round((start - opened).total_seconds(), 2),
            "recovery_s": (end - start).total_seconds()}


def timed_start(env: dict[str, str], log: Path) -> dict[str, Any]:
    """Start a worker, wait until ready, read what it restored, SIGKILL it."""
    worker, out = start_measured(env, log)
    worker.kill()
    return out


def measure(users: int, events: int, root: Path, seed: int = 0) -> dict[str, Any]:
    """The restarts above on an embedded stack of their own; one dict of results."""
    with embedded_stack({}) as stack:
        base = {**stack.env(), "SIDSTREAM_APP_ID": "recovery", "SIDSTREAM_MODELS": "false",
                "SIDSTREAM_MODEL_DIR": str(root / "models"), "SIDSTREAM_METRICS_PORT": ""}
        disk = Settings.from_env({**base, "SIDSTREAM_STORE": "rocksdb",
                                  "SIDSTREAM_DATA_DIR": str(root / "disk")})
        ensure_topics(disk)
        first = WorkerProcess(disk.env(), root / "first.log").start()
        first.wait_ready(timeout_s=120)
        start = time.monotonic()
        produce(disk, users, events, seed)
        first.wait_processed(events, timeout_s=1800)
        apply_s = time.monotonic() - start
        time.sleep(2.5)  # past a commit: the restarts re-read no events
        first.kill()
        out: dict[str, Any] = {"users": users, "events": events, "apply_s": round(apply_s, 1),
                               "changelog_records": changelog_records(disk)}
        out["rocksdb_intact"] = timed_start(disk.env(), root / "intact.log")
        shutil.rmtree(disk.worker.data_dir)
        out["rocksdb_wiped"] = timed_start(disk.env(), root / "wiped.log")
        memory = disk.with_values(store="memory", data_dir=root / "memory")
        out["memory"] = timed_start(memory.env(), root / "memory.log")
        return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=50_000)
    p.add_argument("--events", type=int, default=150_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write the results here too")
    args = p.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="store-recovery-"))
    result = measure(args.users, args.events, root, args.seed)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
