"""Fault injection against the real broker and Redis: crashes, scale-out, Redis outage, SIGTERM.

Each scenario replays events through the embedded stack while a fault is injected, then checks
the end state against what a clean run must give: every user's sequence, event count and ordered
items in the state table (read back from its changelog topic), and a fresh list in Redis for
every touched user (``event_ts`` equal to the user's last event). ``sidstream chaos`` runs the
full-size scenarios (``make chaos``); tests run the same code at smaller sizes.
"""

from __future__ import annotations

import json
import logging
import threading
import time
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
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.stale_lists == 0

    def line(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.notes.items())
        return (f"{self.scenario}: {'PASS' if self.ok else 'FAIL'} events={self.events} "
                f"users={self.users} lost={self.lost} duplicated={self.duplicated} "
                f"stale_lists={self.stale_lists} {extra}")


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


def compare(name: str, settings: Settings, events: list[Event]) -> Result:
    st = settings.state
    expected = expected_states(events, StateLimits(st.seq_len, st.dedup_window, st.ordered_cap))
    actual = read_states(settings)
    result = Result(name, len(events), len(expected))
    client = redis.Redis.from_url(settings.redis.redis_url)
    keys = list(expected)
    payloads = client.mget([f"sidstream:rec:{k}" for k in keys]) if keys else []
    for key, raw in zip(keys, payloads, strict=True):
        want, got = expected[key], actual.get(key)
        n_got = got["n"] if got else 0
        result.lost += max(0, want.n_events - n_got)
        result.duplicated += max(0, n_got - want.n_events)
        if got and got["seq"] != [[e.item_id, e.type, e.ts] for e in want.seq]:
            result.lost += 1 if n_got <= want.n_events else 0
            result.duplicated += 1 if n_got > want.n_events else 0
        if raw is None or json.loads(raw)["event_ts"] != want.last_ts:
            result.stale_lists += 1
            result.notes.setdefault("stale_users", []).append(key)
        if n_got != want.n_events:
            result.notes.setdefault("bad_users", []).append(f"{key}:{n_got}/{want.n_events}")
    return result


def converge(name: str, settings: Settings, events: list[Event], timeout_s: float) -> Result:
    """Poll until the end state matches a clean run (or the timeout): the final check."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = compare(name, settings, events)
        if result.ok or time.monotonic() > deadline:
            return result
        time.sleep(1.0)


@dataclass
class Cluster:
    """Worker processes of one app id, started and stopped by a scenario."""

    settings: Settings
    logdir: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def start(self) -> WorkerProcess:
        i = len(self.workers)
        env = {**self.settings.env(), "SIDSTREAM_METRICS_PORT": "",
               "SIDSTREAM_DATA_DIR": str(self.logdir / f"faust{i}")}
        worker = WorkerProcess(env, self.logdir / f"worker{i}.log").start()
        self.workers.append(worker)
        return worker

    def stop_all(self) -> None:
        for w in self.workers:
            w.stop()


def during(replay: Replayer, fractions: list[float], action: Callable[[int], None]) -> None:
    """Run ``action(i)`` when the replay passes each fraction of its events."""
    for i, frac in enumerate(fractions):
        while replay.is_alive() and replay.progress < frac:
            time.sleep(0.05)
        action(i)
