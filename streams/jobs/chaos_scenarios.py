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
from dataclasses import dataclass
from pathlib import Path

from infra.embedded import Stack, embedded_stack, start_redis, stop_process
from streams.contracts.events import Event
from streams.jobs.chaos import Cluster, Replayer, Result, converge, during, make_events
from streams.runtime.topics import ensure_topics
from streams.settings import Settings

log = logging.getLogger(__name__)


Scenario = Callable[[Stack, "ChaosConfig", Path | None], Result]


@dataclass(frozen=True)
class ChaosConfig:
    events: int = 20_000
    rate: float = 1_000.0  # offered events/s
    kills: int = 4
    workers: int = 2  # scale-out: workers before one joins (and after one leaves)
    outage_s: float = 20.0
    seed: int = 0
    timeout_s: float = 180.0  # for the end state to converge after the replay


def scenario_settings(stack: Stack, name: str, partitions: int = 8) -> Settings:
    s = Settings.from_env({**stack.env(), "SIDSTREAM_APP_ID": f"chaos-{name}",
                           "SIDSTREAM_TOPIC_PARTITIONS": str(partitions)})
    ensure_topics(s)
    return s


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
    settings = scenario_settings(stack, name)
    cluster = Cluster(settings, logdir or Path(tempfile.mkdtemp(prefix=f"chaos-{name}-")))
    return settings, cluster, make_events(cfg.events, cfg.seed + seed_offset)


@isolated
def crash(stack: Stack, cfg: ChaosConfig, logdir: Path | None = None) -> Result:
    """SIGKILL the worker at random points of the replay, restarting it each time."""
    settings, cluster, events = prepare(stack, "crash", cfg, logdir, 0)
    rng = random.Random(cfg.seed)
    cluster.start().wait_ready(90)
    replay = Replayer(settings, events, cfg.rate)
    replay.start()

    def kill_and_restart(_: int) -> None:
        cluster.workers[-1].kill()
        cluster.start()

    points = sorted(rng.uniform(0.05, 0.95) for _ in range(cfg.kills))
    try:
        during(replay, points, kill_and_restart)
        replay.join()
        result = converge(f"worker crash (SIGKILL x{cfg.kills})", settings, events,
                          cfg.timeout_s)
        result.notes["kill_points"] = ",".join(f"{p:.2f}" for p in points)
    finally:
        cluster.stop_all()
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
        result = converge(f"scale-out ({n} -> {n + 1} -> {n} workers)", settings, events,
                          cfg.timeout_s)
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
    settings = Settings.from_env({**scenario_settings(stack, "redis").env(),
                                  "SIDSTREAM_REDIS_URL": url})
    cluster = Cluster(settings, logdir or Path(tempfile.mkdtemp(prefix="chaos-redis-")))
    events = make_events(cfg.events, cfg.seed + 2)
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
        result = converge(f"redis outage ({cfg.outage_s:.0f} s)", settings, events,
                          cfg.timeout_s)
        snap = worker.metrics()
        result.notes.update(worker_alive=worker.alive, unready_during_outage=seen_unready,
                            ready_after=becomes_ready(worker.port, 30.0),
                            redis_errors=int(snap.total("sidstream_redis_errors_total")))
        if not (worker.alive and seen_unready):
            result.stale_lists = max(result.stale_lists, 1)  # a failed guarantee fails the run
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
        successor = cluster.start()
        successor.wait_ready(90)
        replay.join()
        result = converge("graceful shutdown (SIGTERM)", settings, events, cfg.timeout_s)
        redone = successor.metrics().total("sidstream_events_duplicate_total")
        result.notes.update(exit_code=codes[0], redelivered_after_sigterm=int(redone))
        if codes[0] != 0 or redone:
            result.duplicated = max(result.duplicated, int(redone), 1 if codes[0] else 0)
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
             "sigterm": graceful}
