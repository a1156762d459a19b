"""The fault scenarios themselves; each returns a :class:`streams.jobs.chaos.Result`."""

from __future__ import annotations

import dataclasses
import functools
import logging
import random
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from infra.embedded import Stack, embedded_stack, start_broker, start_redis, stop_process
from infra.worker_process import WorkerProcess
from streams.contracts.events import Event
from streams.jobs.chaos import (
    Cluster,
    Replayer,
    Result,
    converge,
    corrupt_local_state,
    during,
    make_events,
    whole_state_env,
    wipe_local_state,
)
from streams.runtime.topics import ensure_topics
from streams.settings import Settings

log = logging.getLogger(__name__)


Scenario = Callable[[Stack, "ChaosConfig", Path | None], Result]


def default_store() -> str:
    """The workers' table store: ``SIDSTREAM_STORE`` of the environment (default memory)."""
    return Settings.from_env().worker.store


def default_instance_id() -> str:
    """``SIDSTREAM_GROUP_INSTANCE_ID`` of the environment: static members, one per data dir
    (``streams.jobs.chaos.worker_env``); empty: dynamic membership."""
    return Settings.from_env().kafka.group_instance_id


@dataclass(frozen=True)
class ChaosConfig:
    events: int = 20_000
    rate: float = 1_000.0  # offered events/s
    kills: int = 4
    workers: int = 2  # scale-out: workers before one joins (and after one leaves)
    outage_s: float = 20.0
    seed: int = 0
    timeout_s: float = 180.0  # for the end state to converge after the replay
    store: str = field(default_factory=default_store)  # memory or rocksdb (SIDSTREAM_STORE)
    group_instance_id: str = field(default_factory=default_instance_id)


def scenario_settings(stack: Stack, name: str, events: list[Event], partitions: int = 8,
                      store: str = "memory", group_instance_id: str = "") -> Settings:
    """A fresh app whose user states hold every event of ``events`` (the whole-state check)."""
    s = Settings.from_env({**stack.env(), "SIDSTREAM_APP_ID": f"chaos-{name}",
                           "SIDSTREAM_TOPIC_PARTITIONS": str(partitions),
                           "SIDSTREAM_STORE": store,
                           "SIDSTREAM_GROUP_INSTANCE_ID": group_instance_id,
                           **whole_state_env(events)})
    ensure_topics(s)
    return s


def label(name: str, cfg: ChaosConfig) -> str:
    """A result's scenario name, with the store when it is not the in-memory default."""
    tags = ([] if cfg.store == "memory" else [cfg.store]) + (
        ["static members"] if cfg.group_instance_id else [])
    return f"{name} [{', '.join(tags)}]" if tags else name


def isolated(scenario: Scenario) -> Callable[[ChaosConfig, Path | None], Result]:
    """Run ``scenario`` on a broker and Redis of its own, so no scenario sees another's events."""

    @functools.wraps(scenario)
    def run(cfg: ChaosConfig, logdir: Path | None = None) -> Result:
        with embedded_stack({}) as stack:
            return scenario(stack, cfg, logdir)

    return run


def prepare(stack: Stack, name: str, cfg: ChaosConfig, logdir: Path | None, seed_offset: int
            ) -> tuple[Settings, Cluster, list[Event]]:
    """Settings of a fresh app, its (empty) worker cluster and the events to replay."""
    events = make_events(cfg.events, cfg.seed + seed_offset)
    settings = scenario_settings(stack, name, events, store=cfg.store,
                                 group_instance_id=cfg.group_instance_id)
    cluster = Cluster(settings, logdir or Path(tempfile.mkdtemp(prefix=f"chaos-{name}-")))
    return settings, cluster, events


def crash_run(stack: Stack, cfg: ChaosConfig, logdir: Path | None, what: str,
              damage: Callable[[Path], int] | None = None) -> Result:
    """SIGKILL the worker at random points of the replay, restarting it each time on the data
    dir it left (after ``damage`` to that dir, if given)."""
    settings, cluster, events = prepare(stack, "crash", cfg, logdir, 0)
    rng = random.Random(cfg.seed)
    cluster.start().wait_ready(90)
    replay = Replayer(settings, events, cfg.rate)
    replay.start()
    damaged: list[int] = []

    def kill_and_restart(_: int) -> None:
        cluster.workers[-1].kill()
        if damage is not None:
            damaged.append(damage(cluster.data_dirs[-1]))
        cluster.start(cluster.data_dirs[-1])

    points = sorted(rng.uniform(0.05, 0.95) for _ in range(cfg.kills))
    try:
        during(replay, points, kill_and_restart)
        replay.join()
        result = converge(label(f"worker crash ({what} x{cfg.kills})", cfg), settings, events,
                          cfg.timeout_s)
        result.notes.update(kill_points=",".join(f"{p:.2f}" for p in points),
                            **local_state_notes(cluster.workers[-1]))
        if damage is not None:
            result.notes["files_damaged"] = damaged
            if not damaged or not damaged[0]:  # nothing on disk: the scenario tested nothing
                # (a later kill may hit a worker that has not opened its databases yet)
                result.failed_checks.append("files_damaged")
    finally:
        cluster.stop_all()
    return result


def local_state_notes(worker: WorkerProcess) -> dict[str, int]:
    """What a (re)started worker read from the changelog and discarded of its local state."""
    snap = worker.metrics()
    return {"restored_records": int(snap.total("sidstream_state_restored_records_total")),
            "discarded_unreadable": int(snap.get("sidstream_state_discarded_total",
                                                 reason="unreadable")),
            "discarded_ahead": int(snap.get("sidstream_state_discarded_total",
                                            reason="ahead_of_changelog"))}


@isolated
def crash(stack: Stack, cfg: ChaosConfig, logdir: Path | None = None) -> Result:
    """SIGKILL the worker at random points of the replay, restarting it each time."""
    return crash_run(stack, cfg, logdir, "SIGKILL")


@isolated
def crash_wipe(stack: Stack, cfg: ChaosConfig, logdir: Path | None = None) -> Result:
    """:func:`crash` on the disk store, each restart on an emptied data dir (a lost disk)."""
    return crash_run(stack, dataclasses.replace(cfg, store="rocksdb"), logdir,
                     "SIGKILL, data dir wiped", wipe_local_state)


@isolated
def crash_corrupt(stack: Stack, cfg: ChaosConfig, logdir: Path | None = None) -> Result:
    """:func:`crash` on the disk store, each restart on garbage over the table's files: the
    worker must rebuild them from the changelog, not serve what it can still read."""
    result = crash_run(stack, dataclasses.replace(cfg, store="rocksdb"), logdir,
                       "SIGKILL, local state corrupted", corrupt_local_state)
    if not result.notes.get("discarded_unreadable"):
        result.failed_checks.append("corrupt_state_discarded")
    return result


@isolated
def scale_out(stack: Stack, cfg: ChaosConfig, logdir: Path | None = None) -> Result:
    """``cfg.workers`` workers, one more joins at 30%, one leaves (SIGTERM) at 60%: two
    rebalances mid-replay, the replay itself starting while the fresh group still settles."""
    n = cfg.workers
    settings, cluster, events = prepare(stack, f"scale{n}", cfg, logdir, 1)
    for _ in range(n):
        cluster.start()
    for w in cluster.workers:
        w.wait_ready(90)
    replay = Replayer(settings, events, cfg.rate)
    replay.start()

    def change(i: int) -> None:
        if i == 0:
            cluster.start()
        else:
            cluster.workers[0].stop()

    try:
        during(replay, [0.3, 0.6], change)
        replay.join()
        result = converge(label(f"scale-out ({n} -> {n + 1} -> {n} workers)", cfg), settings,
                          events, cfg.timeout_s)
        result.notes["partitions"] = settings.kafka.topic_partitions
    finally:
        cluster.stop_all()
    return result


def scale_out_3(cfg: ChaosConfig, logdir: Path | None = None) -> Result:
    """:func:`scale_out` from three workers (3 -> 4 -> 3)."""
    return scale_out(dataclasses.replace(cfg, workers=3), logdir)


@isolated
def redis_outage(stack: Stack, cfg: ChaosConfig, logdir: Path | None = None) -> Result:
    """Stop the worker's own redis-server for ``outage_s`` mid-replay, then bring it back."""
    datadir = Path(tempfile.mkdtemp(prefix="chaos-redis-data-"))
    url, proc = start_redis(persist_dir=datadir)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    events = make_events(cfg.events, cfg.seed + 2)
    base = scenario_settings(stack, "redis", events, store=cfg.store,
                             group_instance_id=cfg.group_instance_id)
    settings = Settings.from_env({**base.env(), "SIDSTREAM_REDIS_URL": url})
    cluster = Cluster(settings, logdir or Path(tempfile.mkdtemp(prefix="chaos-redis-")))
    worker = cluster.start()
    worker.wait_ready(90)
    replay = Replayer(settings, events, cfg.rate)
    replay.start()
    seen_unready = False
    try:
        during(replay, [0.3], lambda _: stop_process(proc))
        deadline = time.monotonic() + cfg.outage_s
        while time.monotonic() < deadline:
            seen_unready |= readyz(worker.port) == 503
            time.sleep(0.5)
        _, proc = start_redis(port, persist_dir=datadir)
        replay.join()
        result = converge(label(f"redis outage ({cfg.outage_s:.0f} s)", cfg), settings,
                          events, cfg.timeout_s)
        snap = worker.metrics()
        checks = {"worker_alive": worker.alive, "unready_during_outage": seen_unready,
                  "ready_after": becomes_ready(worker.port, 30.0)}
        result.notes.update(checks, redis_errors=int(snap.total("sidstream_redis_errors_total")))
        result.failed_checks += [name for name, held in checks.items() if not held]
    finally:
        cluster.stop_all()
        stop_process(proc)
    return result


@isolated
def graceful(stack: Stack, cfg: ChaosConfig, logdir: Path | None = None) -> Result:
    """SIGTERM mid-replay: the batch finishes and offsets are committed, so nothing is redone."""
    settings, cluster, events = prepare(stack, "sigterm", cfg, logdir, 3)
    cluster.start().wait_ready(90)
    replay = Replayer(settings, events, cfg.rate)
    replay.start()
    codes: list[int | None] = []
    try:
        during(replay, [0.5], lambda _: codes.append(cluster.workers[0].stop()))
        successor = cluster.start(cluster.data_dirs[0])  # the stopped worker's local state
        successor.wait_ready(90)
        restarted = local_state_notes(successor)
        replay.join()
        result = converge(label("graceful shutdown (SIGTERM)", cfg), settings, events,
                          cfg.timeout_s)
        redone = successor.metrics().total("sidstream_events_duplicate_total")
        result.notes.update(exit_code=codes[0], redelivered_after_sigterm=int(redone),
                            **restarted)
        result.failed_checks += (["exit_code"] if codes[0] != 0 else []) + (
            ["redelivered_after_sigterm"] if redone else [])
    finally:
        cluster.stop_all()
    return result


@isolated
def broker_restart(stack: Stack, cfg: ChaosConfig, logdir: Path | None = None) -> Result:
    """Kill the embedded broker mid-replay and start a new one on the same port. Tansu keeps
    everything in memory: events not yet read, the changelog and the committed offsets go with
    it. A worker that lives through the restart never becomes ready again (measured: it writes
    its states into the new broker's changelog, then its table recovery, and any new worker's,
    waits for records that never come), so the runbook stops the workers with the broker and
    starts them once it is back with its topics. What is checked is what the embedded default
    can still promise after that: the new worker is ready, and every event sent from then on is
    applied exactly once with its user's list written. The events lost with the broker are
    counted, not hidden (``lost_with_broker``). The replay runs at most ``events / 60`` per
    second so that it outlasts the restart."""
    settings, cluster, events = prepare(stack, "broker", cfg, logdir, 4)
    cluster.start().wait_ready(90)
    replay = Replayer(settings, events, min(cfg.rate, cfg.events / 60))
    replay.start()
    marks: dict[str, int] = {}

    def restart(_: int) -> None:
        port = int(stack.broker.rsplit(":", 1)[1])
        marks["down_at"] = replay.sent
        stack.procs[0].kill()  # the broker: started first by embedded_stack
        stack.procs[0].wait()
        # the runbook: workers go down with the broker's data (one that lives on writes its
        # states into the new broker's changelog, and no worker then finishes recovering it)
        cluster.workers[-1].kill()
        time.sleep(2.0)
        stack.procs[0] = start_broker(port)[1]
        ensure_topics(settings)
        marks["up_at"] = replay.sent
        # on the local state the killed worker left: a disk store must find it ahead of the
        # new (empty) changelog and discard it
        cluster.start(cluster.data_dirs[-1]).wait_ready(90)
        marks["ready_at"] = replay.sent

    try:
        during(replay, [0.2], restart)
        replay.join()
        after = events[marks["ready_at"]:]
        result = converge(label("broker restart (in-memory Tansu, workers restarted)", cfg),
                          settings, events, cfg.timeout_s, subset=after)
        worker = cluster.workers[-1]
        local = local_state_notes(worker)
        checks = {"worker_alive": worker.alive, "ready_after": becomes_ready(worker.port, 30.0),
                  "events_after_restart": len(after) > 0}
        if cfg.store == "rocksdb":
            checks["old_local_state_discarded"] = local["discarded_ahead"] > 0
        result.notes.update(checks, **marks, **local)
        result.failed_checks += [name for name, held in checks.items() if not held]
    finally:
        cluster.stop_all()
    return result


def becomes_ready(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if readyz(port) == 200:
            return True
        time.sleep(0.5)
    return False


def readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


SCENARIOS = {"crash": crash, "scale": scale_out, "scale3": scale_out_3, "redis": redis_outage,
             "sigterm": graceful, "broker": broker_restart, "crash-wipe": crash_wipe,
             "crash-corrupt": crash_corrupt}
