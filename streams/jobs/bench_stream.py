"""``sidstream bench stream``: the whole pipeline under load, through the real broker and Redis.

Every case runs on a fresh embedded stack (Tansu + redis-server) with one worker process:

1. warm-up: the first ``warm_events`` events of the replay (each user's order kept, users
   interleaved) go through a worker without models, so users have histories when measuring;
2. that worker stops (SIGTERM: offsets committed) and the worker under test starts on the same
   state (recovered from the changelog), with or without models;
3. the next ``events`` events are produced as fast as possible (throughput cases: events/s
   between 10 % and 90 % done) or at a fixed rate (freshness case: event timestamp to Redis
   write, from the worker's histogram).

An event is done when the list answering it is in Redis (``sidstream_events_accounted_total``:
the newest event behind a written list, or one coalesced into that write: several events of a
user in one recompute, a list replaced before it was written), not when it reached the user
state; a case ends when every measured event is accounted for, so the last lists are in its
throughput and freshness. ``accounted`` in the results says how.

Cases: ``limit`` (no model work: consume, state, co-visitation + popularity lists, Redis),
the full pipeline at each beam width, and the full pipeline at ``rate`` events/s. Co-visitation
and popularity are seeded from the data set in every case, so the difference is the models'.
The worker's CPU (cores busy, from /proc) and resident memory are reported per case, its search
process (``SIDSTREAM_MODEL_PROCESS``) included.

The measured worker batches its changelog records as it would on Apache Kafka
(``SIDSTREAM_BROKER_KIND=kafka``); the warm-up worker writes single-record batches, so that the
measured worker's recovery from Tansu is exact. With one record per changelog batch (what Tansu
needs for exact recovery), the changelog producer, not the models, limits a worker to ~600
events/s on this machine: a property of the development broker.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from infra.embedded import embedded_stack, free_port
from infra.scrape import Snapshot, accounted
from infra.worker_process import WorkerProcess
from models.artifacts import latest
from models.data.dataset import load_dataset
from streams.channels.seed import SEED_FILE
from streams.contracts.events import event_to_json
from streams.jobs.replay import event_of, interactions, make_producer, pace
from streams.jobs.seed import build_seed
from streams.runtime.topics import ensure_topics
from streams.settings import EVENTS_TOPIC, Settings

log = logging.getLogger(__name__)

BEAUTY = "../shared/data/amazon-beauty-2014"
# how often the worker's /metrics is read while measuring (each read costs the worker CPU;
# the 10 %/90 % times are interpolated between reads)
POLL_S = 0.25


@dataclass(frozen=True)
class StreamBenchConfig:
    data: str = BEAUTY
    model_dir: Path = Path("artifacts")
    warm_events: int = 100_000
    events: int = 20_000
    rates: tuple[float, ...] = (300.0,)  # offered loads of the freshness cases
    rate_seconds: float = 30.0
    beams: tuple[int, ...] = (20, 10, 5)
    threads: int = 1  # SIDSTREAM_MODEL_THREADS of the worker (0: one per core)
    json: Path | None = None


@dataclass(frozen=True)
class Case:
    name: str
    env: dict[str, str]
    rate: float = 0.0  # 0: as fast as the producer goes


@dataclass
class CaseResult:
    name: str
    events: int
    seconds: float
    events_per_s: float
    offered_per_s: float
    freshness_ms: dict[str, float] = field(default_factory=dict)
    cpu_cores: float = 0.0
    rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    mean_batch: float = 0.0
    mean_job_users: float = 0.0  # users per model-stage job (micro-batches joined while lagging)
    stages_ms: dict[str, float] = field(default_factory=dict)
    # measured events by outcome: list_written, coalesced (answered by the same or a later
    # write of the user's list), no_recompute, duplicate, invalid
    accounted: dict[str, int] = field(default_factory=dict)


def cases(cfg: StreamBenchConfig) -> list[Case]:
    out = [Case("limit", {"SIDSTREAM_MODELS": "false"})]
    out += [Case(f"full beam {b}", {"SIDSTREAM_BEAM": str(b)}) for b in cfg.beams]
    out += [Case(f"full beam {cfg.beams[0]} @ {r:g}/s", {"SIDSTREAM_BEAM": str(cfg.beams[0])},
                 rate=r) for r in cfg.rates]
    return out


def run_bench_stream(cfg: StreamBenchConfig) -> list[CaseResult]:
    ds = load_dataset(cfg.data)
    order = interactions(ds)
    n_fixed = int(max(cfg.rates) * cfg.rate_seconds)
    need = cfg.warm_events + max(cfg.events, n_fixed)
    if need > len(order):
        raise ValueError(f"{cfg.data} has {len(order)} events, the bench needs {need}")
    workdir = Path(tempfile.mkdtemp(prefix="sidstream-bench-"))
    models = _model_dir(cfg, workdir)
    results = []
    for case in cases(cfg):
        n = int(case.rate * cfg.rate_seconds) if case.rate else cfg.events
        res = _run_case(case, cfg, ds, order, n, models, workdir / case.name.replace(" ", "_"))
        print(_row(res), flush=True)
        results.append(res)
    _report(results, cfg)
    return results


def _model_dir(cfg: StreamBenchConfig, workdir: Path) -> Path:
    """The artifacts (linked) plus a co-visitation/popularity seed of the data set."""

    models = workdir / "models"
    models.mkdir(parents=True)
    for kind in ("recall", "ranker"):
        src = (cfg.model_dir / kind).resolve()
        if not latest(src):
            raise FileNotFoundError(f"no {kind} artifact under {cfg.model_dir} (train it first: "
                                    "see README 'Stream benchmark')")
        (models / kind).symlink_to(src)
    build_seed(cfg.data, str(models / SEED_FILE))
    return models


def _produce(settings: Settings, ds: Any, todo: list[Any], rate: float) -> None:
    """Send interactions as events, each stamped when sent (freshness counts from there)."""
    producer = make_producer(settings)
    start = time.monotonic()
    try:
        for sent, it in enumerate(todo):
            pace(start, sent, rate)
            ev = event_of(ds, it)
            producer.send(EVENTS_TOPIC, key=ev.user_key.encode(), value=event_to_json(ev))
        producer.flush()
    finally:
        producer.close()


def _run_case(case: Case, cfg: StreamBenchConfig, ds: Any, order: list[Any], n: int,
              models: Path, workdir: Path) -> CaseResult:
    workdir.mkdir(parents=True)
    with embedded_stack({}) as stack:
        env = {**stack.env(), "SIDSTREAM_DATA_DIR": str(workdir / "faust"),
               "SIDSTREAM_MODEL_DIR": str(models), "SIDSTREAM_METRICS_PORT": str(free_port()),
               "SIDSTREAM_MODEL_THREADS": str(cfg.threads), "SIDSTREAM_APP_ID": "bench"}
        settings = Settings.from_env(env)
        ensure_topics(settings)
        warm = WorkerProcess({**env, "SIDSTREAM_MODELS": "false"}, workdir / "warm.log").start()
        warm.wait_ready(timeout_s=120)
        _produce(settings, ds, order[: cfg.warm_events], 0.0)
        warm.wait_processed(cfg.warm_events, timeout_s=900)
        warm.stop()
        # measured with the producer batching a real Kafka gets: Tansu's end-offset quirk
        # only matters to a later recovery, and the warm-up's single-record batches keep the
        # measured worker's own recovery exact (see SIDSTREAM_BROKER_KIND)
        worker = WorkerProcess({**env, **case.env, "SIDSTREAM_BROKER_KIND": "kafka"},
                               workdir / "worker.log").start()
        try:
            worker.wait_ready(timeout_s=300)
            return _measure(case, settings, ds, order[cfg.warm_events: cfg.warm_events + n], worker)
        finally:
            worker.stop()


def _measure(case: Case, settings: Settings, ds: Any, todo: list[Any],
             worker: WorkerProcess) -> CaseResult:
    assert worker.proc is not None
    pid, n = worker.proc.pid, len(todo)
    before = worker.metrics()
    base = accounted(before)
    producer = threading.Thread(target=_produce, args=(settings, ds, todo, case.rate))
    t0, cpu0 = time.monotonic(), _cpu_seconds(pid)
    producer.start()
    samples: list[tuple[float, float]] = []
    deadline = t0 + max(600.0, 3 * n / max(case.rate, 1.0))
    while time.monotonic() < deadline:
        done = accounted(worker.metrics()) - base
        samples.append((time.monotonic() - t0, done))
        if done >= n:
            break
        time.sleep(POLL_S)
    wall, cpu = time.monotonic() - t0, _cpu_seconds(pid) - cpu0
    producer.join()
    if samples[-1][1] < n:
        raise TimeoutError(f"{case.name}: {samples[-1][1]:.0f} of {n} events have their list "
                           "in Redis")
    snap = worker.metrics()
    rss, peak = _memory_mb(pid)
    res = CaseResult(case.name, n, round(wall, 2), round(_sustained(samples, n), 1),
                     round(case.rate or n / max(samples[0][0], 1e-9), 1),
                     cpu_cores=round(cpu / wall, 2), rss_mb=rss, peak_rss_mb=peak,
                     mean_batch=round(_mean(snap, "sidstream_batch_size"), 1),
                     mean_job_users=round(_mean(snap, "sidstream_model_job_users"), 1),
                     stages_ms=_stages(snap), accounted=_outcomes(snap, before))
    if case.rate:
        res.freshness_ms = {f"p{int(q * 100)}": round(1000 * snap.quantile(
            "sidstream_freshness_seconds", q), 1) for q in (0.5, 0.95, 0.99)}
    return res


def _outcomes(snap: Snapshot, before: Snapshot) -> dict[str, int]:
    """What became of the measured events (counter differences over the case)."""
    out = {o: int(snap.get("sidstream_events_accounted_total", outcome=o)
                  - before.get("sidstream_events_accounted_total", outcome=o))
           for o in ("list_written", "coalesced", "no_recompute", "dropped_deferred")}
    for name, metric in (("duplicate", "sidstream_events_duplicate_total"),
                         ("invalid", "sidstream_events_invalid_total")):
        out[name] = int(snap.total(metric) - before.total(metric))
    return {k: v for k, v in out.items() if v}


def _sustained(samples: list[tuple[float, float]], n: int) -> float:
    """Events/s between 10 % and 90 % of the events done (start-up and tail left out)."""
    def when(frac: float) -> float:  # interpolated between the two samples around it
        prev_t, prev_done = samples[0]
        for t, done in samples:
            if done >= frac * n:
                if done <= prev_done:
                    return t
                return prev_t + (t - prev_t) * (frac * n - prev_done) / (done - prev_done)
            prev_t, prev_done = t, done
        return samples[-1][0]

    lo, hi = when(0.1), when(0.9)
    return 0.8 * n / (hi - lo) if hi > lo else n / max(samples[-1][0], 1e-9)


def _tree(pid: int) -> list[int]:
    """The worker and its child processes (the search process)."""
    out = [pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def _cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _memory_mb(pid: int) -> tuple[float, float]:
    """Resident and peak resident MB of the worker and its child processes together."""
    rss = peak = 0.0
    for p in _tree(pid):
        try:
            text = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, rest = line.partition(":")
            if key == "VmRSS":
                rss += int(rest.split()[0]) / 1024
            elif key == "VmHWM":
                peak += int(rest.split()[0]) / 1024
    return round(rss, 1), round(peak, 1)


def _mean(snap: Snapshot, name: str) -> float:
    count = snap.get(f"{name}_count")
    return snap.get(f"{name}_sum") / count if count else 0.0


def _stages(snap: Snapshot) -> dict[str, float]:
    """Mean ms per batch of each pipeline stage."""
    out = {}
    for stage in ("state", "search", "generative", "ranker", "redis", "batch"):
        count = snap.get("sidstream_stage_seconds_count", stage=stage)
        if count:
            out[stage] = round(1000 * snap.get("sidstream_stage_seconds_sum", stage=stage)
                               / count, 2)
    return out


def _row(r: CaseResult) -> str:
    fresh = " ".join(f"{k} {v:.0f} ms" for k, v in r.freshness_ms.items())
    return (f"{r.name:<24} {r.events_per_s:>8.0f} ev/s  cpu {r.cpu_cores:.2f} cores  "
            f"rss {r.rss_mb:.0f} MB (peak {r.peak_rss_mb:.0f})  batch {r.mean_batch:.0f}  "
            f"job {r.mean_job_users:.0f} users  "
            f"{fresh}")


def _report(results: list[CaseResult], cfg: StreamBenchConfig) -> None:
    limit = next(r for r in results if r.name == "limit")
    full = results[1]
    fresh = "; ".join(f"at {r.offered_per_s:g}/s freshness p50 {r.freshness_ms['p50']:.0f} ms,"
                      f" p95 {r.freshness_ms['p95']:.0f} ms, p99 {r.freshness_ms['p99']:.0f} ms"
                      for r in results if r.freshness_ms)
    print(f"stream bench: full pipeline {full.events_per_s:.0f} events/s "
          f"({full.events_per_s / limit.events_per_s:.0%} of the {limit.events_per_s:.0f}/s "
          f"limit); {fresh}")
    if cfg.json:
        doc = {"config": {k: str(v) if isinstance(v, Path) else v
                          for k, v in asdict(cfg).items()},
               "results": [asdict(r) for r in results]}
        cfg.json.write_text(json.dumps(doc, indent=2))
