"""Fault injection against the real broker and Redis: crashes, scale-out, Redis outage, SIGTERM.

Each scenario replays events through the embedded stack while a fault is injected, then checks
the end state against what a clean run must give, with a state large enough to hold every
event of every user: each user's whole sequence in order, dedup ids, ordered items, event count
and last timestamp in the state table (read back from its changelog topic), and a list in Redis
from their last event; the check passes only if it still holds after a settling pause.
``sidstream chaos`` runs the full-size scenarios (``make chaos``); tests run the same code at
smaller sizes.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from infra.worker_process import WorkerProcess
from models.data.dataset import load_dataset
from streams.contracts.events import Event, event_to_json
from streams.jobs.replay import interactions
from streams.pipeline.state import StateLimits, UserState, apply_events
from streams.settings import EVENTS_TOPIC, Settings

log = logging.getLogger(__name__)

TABLE_CHANGELOG = "{app_id}-user-state-changelog"


@dataclass
class Result:
    scenario: str
    events: int
    users: int
    lost: int = 0  # events missing from users' states
    duplicated: int = 0  # events applied more than once
    stale_lists: int = 0  # touched users whose Redis list is missing or not from their last event
    diverged: int = 0  # users whose state differs otherwise (order, items, ordered set, ts)
    failed_checks: list[str] = field(default_factory=list)  # the scenario's own guarantees
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.stale_lists or self.diverged
                    or self.failed_checks)

    def line(self) -> str:
        extra = ", ".join(f"{k}={v[:10] if isinstance(v, list) else v}"  # a few examples
                          for k, v in self.notes.items())
        failed = f" failed_checks={self.failed_checks}" if self.failed_checks else ""
        return (f"{self.scenario}: {'PASS' if self.ok else 'FAIL'} events={self.events} "
                f"users={self.users} lost={self.lost} duplicated={self.duplicated} "
                f"stale_lists={self.stale_lists} diverged={self.diverged}{failed} {extra}")


def make_events(n: int, seed: int = 0) -> list[Event]:
    """``n`` MovieLens interactions as events, timestamped now (each user's order kept)."""
    ds = load_dataset("movielens")
    base = int(time.time() * 1000)
    out = []
    for i, it in enumerate(interactions(ds, seed)[:n]):
        out.append(Event(f"chaos-{seed}-{i}", it.user_id, it.item_id, it.type, base + i))
    return out


def expected_states(events: list[Event], limits: StateLimits) -> dict[str, UserState]:
    """What a clean run leaves in the table: events applied once each, in order."""
    states: dict[str, UserState] = {}
    for ev in events:
        state = states.setdefault(ev.user_key, UserState(ev.user_id))
        apply_events(state, [ev], limits)
    return states


class Replayer(threading.Thread):
    """Sends events at ``rate`` events/s in a background thread."""

    def __init__(self, settings: Settings, events: list[Event], rate: float) -> None:
        super().__init__(daemon=True)
        self.settings, self.events, self.rate = settings, events, rate
        self.sent = 0

    def run(self) -> None:
        producer = KafkaProducer(bootstrap_servers=self.settings.bootstrap_servers, acks="all",
                                 enable_idempotence=False, linger_ms=5)
        start = time.monotonic()
        for ev in self.events:
            ahead = start + self.sent / self.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            producer.send(EVENTS_TOPIC, key=ev.user_key.encode(), value=event_to_json(ev))
            self.sent += 1
        producer.flush()
        producer.close()

    @property
    def progress(self) -> float:
        return self.sent / max(1, len(self.events))


def read_states(settings: Settings) -> dict[str, dict[str, Any]]:
    """Latest state per user from the table's changelog topic."""
    topic = TABLE_CHANGELOG.format(app_id=settings.kafka.app_id)
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers,
                             enable_auto_commit=False, consumer_timeout_ms=2000)
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.kafka.topic_partitions)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        latest: dict[str, dict[str, Any]] = {}
        for msg in consumer:
            if msg.key is not None and msg.value is not None:
                latest[json.loads(msg.key)] = json.loads(msg.value)
        return latest
    finally:
        consumer.close()


def max_events_per_user(events: list[Event]) -> int:
    return max(Counter(ev.user_key for ev in events).values(), default=0)


def whole_state_env(events: list[Event]) -> dict[str, str]:
    """Settings under which a user's state holds all of their events (sequence and dedup ids),
    so that :func:`compare` sees every event, not only the last ``seq_len``."""
    n = str(max(max_events_per_user(events), 1))
    return {"SIDSTREAM_SEQ_LEN": n, "SIDSTREAM_DEDUP_WINDOW": n}


def _user_diff(want: UserState, got: dict[str, Any] | None) -> tuple[int, int, list[str]]:
    """(events lost, events doubled, fields that differ) of one user's state."""
    if got is None:
        return want.n_events, 0, ["missing"]
    got_ids, want_ids = Counter(got.get("ids", [])), Counter(want.recent_ids)
    lost = max(sum((want_ids - got_ids).values()), want.n_events - got["n"])
    doubled = max(sum((got_ids - want_ids).values()), got["n"] - want.n_events)
    expected = want.to_json()
    fields = [f for f in ("ids", "seq", "ordered", "n", "last_ts") if got.get(f) != expected[f]]
    return lost, doubled, fields


def compare(name: str, settings: Settings, events: list[Event],
            actual: dict[str, dict[str, Any]] | None = None) -> Result:
    """The whole end state against a clean run's: each user's full sequence (items, types,
    timestamps, in order), dedup ids, ordered items, event count, last timestamp, and the
    ``event_ts`` of their list in Redis. Needs a state that holds every event of a user
    (:func:`whole_state_env`); ``actual``: the states already read from the changelog."""
    st = settings.state
    most = max_events_per_user(events)
    if most > min(st.seq_len, st.dedup_window):
        raise ValueError(f"a user has {most} events: compare needs SIDSTREAM_SEQ_LEN and "
                         f"SIDSTREAM_DEDUP_WINDOW >= {most} (whole_state_env)")
    expected = expected_states(events, StateLimits(st.seq_len, st.dedup_window, st.ordered_cap))
    actual = read_states(settings) if actual is None else actual
    result = Result(name, len(events), len(expected))
    client = redis.Redis.from_url(settings.redis.redis_url)
    keys = list(expected)
    payloads = client.mget([f"sidstream:rec:{k}" for k in keys]) if keys else []
    for key, raw in zip(keys, payloads, strict=True):
        want = expected[key]
        lost, doubled, fields = _user_diff(want, actual.get(key))
        result.lost += lost
        result.duplicated += doubled
        if fields and not (lost or doubled):
            result.diverged += 1
        if fields:
            result.notes.setdefault("bad_users", []).append(f"{key}:{'/'.join(fields)}")
        if raw is None or json.loads(raw)["event_ts"] != want.last_ts:
            result.stale_lists += 1
            result.notes.setdefault("stale_users", []).append(key)
    extra = set(actual) - set(expected)
    result.diverged += len(extra)  # states of users that sent nothing
    return result


def compare_subset(name: str, settings: Settings, events: list[Event], subset: list[Event]
                   ) -> Result:
    """Only ``subset`` of ``events`` must be applied exactly once (each in its user's dedup ids
    once) and the lists of its users written from their last event; the whole-state comparison
    is kept as notes (``lost_with_broker`` ...)."""
    states = read_states(settings)
    whole = compare(name, settings, events, states)
    result = Result(name, len(subset), len({ev.user_key for ev in subset}))
    counts = {k: Counter(st.get("ids", [])) for k, st in states.items()}
    for ev in subset:
        n = counts.get(ev.user_key, Counter())[ev.event_id]
        result.lost += n == 0
        result.duplicated += max(0, n - 1)
    users = {ev.user_key for ev in subset}  # the subset is the replay's tail: their last events
    result.stale_lists = sum(u in users for u in whole.notes.get("stale_users", []))
    result.notes.update(lost_with_broker=whole.lost, duplicated_overall=whole.duplicated,
                        stale_overall=whole.stale_lists)
    return result


def converge(name: str, settings: Settings, events: list[Event], timeout_s: float,
             settle_s: float = 5.0, subset: list[Event] | None = None) -> Result:
    """Poll until the end state matches a clean run (or the timeout), then wait ``settle_s``
    and compare once more: a late write (a redelivery, a stale list) fails the run. With
    ``subset``, the check is :func:`compare_subset`."""
    def check() -> Result:
        if subset is None:
            return compare(name, settings, events)
        return compare_subset(name, settings, events, subset)

    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result.ok:
            time.sleep(settle_s)
            result = check()
            result.notes["settled_s"] = settle_s
            return result
        if time.monotonic() > deadline:
            return result
        time.sleep(1.0)


@dataclass
class Cluster:
    """Worker processes of one app id, started and stopped by a scenario."""

    settings: Settings
    logdir: Path
    workers: list[WorkerProcess] = field(default_factory=list)
    data_dirs: list[Path] = field(default_factory=list)  # of each worker, in start order

    def start(self, data_dir: Path | None = None) -> WorkerProcess:
        """A new worker on a new data dir, or on ``data_dir`` (a restart on the local state
        a stopped or killed worker left there)."""
        i = len(self.workers)
        data_dir = data_dir or self.logdir / f"faust{i}"
        worker = WorkerProcess(worker_env(self.settings, data_dir),
                               self.logdir / f"worker{i}.log").start()
        self.workers.append(worker)
        self.data_dirs.append(data_dir)
        return worker

    def stop_all(self) -> None:
        for w in self.workers:
            w.stop()


def worker_env(settings: Settings, data_dir: Path) -> dict[str, str]:
    """A scenario worker's environment on ``data_dir``. With static membership configured each
    data dir is one group member (the configured id with the dir's name): a restart on the same
    local state is the same member, as a StatefulSet pod and its volume."""
    env = {**settings.env(), "SIDSTREAM_METRICS_PORT": "", "SIDSTREAM_DATA_DIR": str(data_dir)}
    if settings.kafka.group_instance_id:
        env["SIDSTREAM_GROUP_INSTANCE_ID"] = f"{settings.kafka.group_instance_id}-{data_dir.name}"
    return env


def table_files(data_dir: Path) -> list[Path]:
    """The files of the user-state table's RocksDB databases under a worker's data dir."""
    return sorted(f for db in data_dir.glob("v*/tables/*.db") for f in db.iterdir()
                  if f.is_file() and f.name != "LOCK")


def wipe_local_state(data_dir: Path) -> int:
    """A lost disk: the worker's data dir is gone. Returns the table files deleted."""
    n = len(table_files(data_dir))
    shutil.rmtree(data_dir, ignore_errors=True)
    return n


def overwrite_with_garbage(path: Path) -> None:
    """Garbage over the whole of ``path``, its size kept (a RocksDB file no longer parses)."""
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.write((bytes(range(256)) * (size // 256 + 1))[:size])


def corrupt_local_state(data_dir: Path) -> int:
    """Garbage over every file of the table's databases, sizes kept (their manifests, logs and
    tables no longer parse). Returns the files overwritten."""
    files = table_files(data_dir)
    for path in files:
        overwrite_with_garbage(path)
    return len(files)


def during(replay: Replayer, fractions: list[float], action: Callable[[int], None]) -> None:
    """Run ``action(i)`` when the replay passes each fraction of its events."""
    for i, frac in enumerate(fractions):
        while replay.is_alive() and replay.progress < frac:
            time.sleep(0.05)
        action(i)
