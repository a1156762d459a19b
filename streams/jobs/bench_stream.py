"""``sidstream bench stream``: the whole pipeline under load, through the real broker and Redis.

Every case runs on a fresh embedded stack (Tansu + redis-server) with one worker process, the
worker under test (with or without models) for the whole case:

1. warm-up: the first ``warm_events`` events of the replay (each user's order kept, users
   interleaved) go through it, so users have histories when measuring; the measurement starts
   once every one of them has its list in Redis;
2. the next ``events`` events are produced as fast as possible (throughput cases: events/s
   between 10 % and 90 % done) or at a fixed rate (freshness case: event timestamp to Redis
   write, from the worker's histogram, counting only what it observed after the warm-up).

An event is done when the list answering it is in Redis (``sidstream_events_accounted_total``:
the newest event behind a written list, or one coalesced into that write: several events of a
user in one recompute, a list replaced before it was written), not when it reached the user
state; a case ends when every measured event is accounted for, so the last lists are in its
throughput and freshness. ``accounted`` in the results says how.

Cases: ``bare`` (``streams/jobs/bench_bare.py``: the measured events through a bare aiokafka
consumer that SETs each one in Redis, no faust, no state: the ceiling of this broker, Redis and
machine), ``faust floor`` (the same carried by the worker's faust app: what faust's message
path leaves of the ceiling, :func:`shares`), ``limit`` (no model work: consume, state,
co-visitation + popularity lists, Redis), the full pipeline at each beam width, the full
pipeline at each of ``rates`` events/s and at one third of the first full case's measured
throughput (``third_rate``). Co-visitation and popularity are seeded from the data set in every
case, so the difference is the models'. The worker's CPU (cores busy, from /proc) and resident
memory are reported per case, its search process (``SIDSTREAM_MODEL_PROCESS``) included. The
run ends with :func:`checks` (full / limit, limit / bare, p99 freshness at one third: ratios
that hold on any machine of this kind, and the absolute targets) and the mean history length of
the measured users (:func:`history_lengths`).

The worker batches its changelog records as it would on Apache Kafka
(``SIDSTREAM_BROKER_KIND=kafka``); no case recovers a changelog, so Tansu's end-offset quirk
(which needs single-record batches for exact recovery) does not enter the figures. An earlier
version warmed up a separate worker and restarted: recovering 100,000 events from Tansu took
over 300 s on this machine.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from infra.embedded import embedded_stack, free_port
from infra.procstat import cpu_seconds, memory_mb
from infra.scrape import Snapshot, accounted
from infra.worker_process import WorkerProcess
from models.artifacts import latest
from models.data.dataset import load_dataset
from streams.channels.seed import SEED_FILE
from streams.contracts.events import event_to_json
from streams.jobs.bench_bare import BARE, FAUST_FLOOR, run_bare_case
from streams.jobs.replay import event_of, interactions, make_producer, pace
from streams.jobs.seed import build_seed
from streams.metrics import OUTCOMES
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
    third_rate: bool = True  # a freshness case at 1/3 of the first full case's throughput
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
    # the worker's cyclic-GC pauses over the case, per generation: count and total ms
    gc_pauses: dict[str, dict[str, float]] = field(default_factory=dict)


def cases(cfg: StreamBenchConfig) -> list[Case]:
    out = [Case("limit", {"SIDSTREAM_MODELS": "false"})]
    out += [Case(f"full beam {b}", {"SIDSTREAM_BEAM": str(b)}) for b in cfg.beams]
    out += [Case(f"full beam {cfg.beams[0]} @ {r:g}/s", {"SIDSTREAM_BEAM": str(cfg.beams[0])},
                 rate=r) for r in cfg.rates]
    return out


def run_bench_stream(cfg: StreamBenchConfig) -> list[CaseResult]:
    ds = load_dataset(cfg.data)
    order = interactions(ds)
    n_fixed = int(max(cfg.rates, default=0.0) * cfg.rate_seconds)
    need = cfg.warm_events + max(cfg.events, n_fixed)
    if need > len(order):
        raise ValueError(f"{cfg.data} has {len(order)} events, the bench needs {need}")
    workdir = Path(tempfile.mkdtemp(prefix="sidstream-bench-"))
    models = _model_dir(cfg, workdir)
    measured = order[cfg.warm_events: cfg.warm_events + cfg.events]
    results = [_run_bare(ds, measured, workdir / "bare"),
               _run_bare(ds, measured, workdir / "faust_floor", "faust floor", FAUST_FLOOR)]
    for res in results:
        print(_row(res), flush=True)
    todo = cases(cfg)
    while todo:
        case = todo.pop(0)
        n = int(case.rate * cfg.rate_seconds) if case.rate else cfg.events
        res = _run_case(case, cfg, ds, order, n, models, workdir / case.name.replace(" ", "_")
                        .replace("/", "_"))
        print(_row(res), flush=True)
        results.append(res)
        if cfg.third_rate and case.name == f"full beam {cfg.beams[0]}":
            todo.insert(0, third_rate_case(cfg, res, len(order)))
    _report(results, cfg, history_lengths(order, cfg.warm_events, cfg.events))
    return results


def third_rate_case(cfg: StreamBenchConfig, full: CaseResult, n_order: int) -> Case:
    """The freshness case at one third of the full pipeline's measured throughput (a load
    that any machine's worker should carry with room to spare, whatever its speed)."""
    rate = max(1.0, round(full.events_per_s / 3))
    rate = min(rate, (n_order - cfg.warm_events) / cfg.rate_seconds)
    return Case(f"full beam {cfg.beams[0]} @ 1/3 = {rate:g}/s",
                {"SIDSTREAM_BEAM": str(cfg.beams[0])}, rate=rate)


def history_lengths(order: list[Any], warm: int, n: int) -> dict[str, float]:
    """Mean length of the measured users' histories when each measured event arrives (its
    user's earlier events in the replay), beside the same mean over every event of the data
    set (what a long-running stream sees): the warm-up is long enough when they are close."""
    seen: Counter[int] = Counter()
    measured, overall = [], []
    for idx, it in enumerate(order):
        if warm <= idx < warm + n:
            measured.append(seen[it.user_id])
        overall.append(seen[it.user_id])
        seen[it.user_id] += 1
    return {"measured_mean": round(float(np.mean(measured)), 2) if measured else 0.0,
            "all_events_mean": round(float(np.mean(overall)), 2)}


def _run_bare(ds: Any, todo: list[Any], workdir: Path, name: str = "bare",
              module: str = BARE) -> CaseResult:
    bare, wall = run_bare_case(ds, todo, workdir, _produce, module=module)
    span = max(bare.last_s - bare.first_s, 1e-9)
    return CaseResult(name, bare.events, round(wall, 2), round(bare.events_per_s, 1),
                      0.0, cpu_cores=round(bare.cpu_s / span, 2), peak_rss_mb=bare.peak_rss_mb,
                      accounted={"set": bare.events})


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
               "SIDSTREAM_MODEL_THREADS": str(cfg.threads), "SIDSTREAM_APP_ID": "bench",
               # changelog batches as a real Kafka gets them: nothing is recovered in a case
               "SIDSTREAM_BROKER_KIND": "kafka"}
        settings = Settings.from_env(env)
        ensure_topics(settings)
        # one worker for the warm-up and the measurement: a restart would recover the
        # warm-up's state from Tansu's changelog, which took over 300 s for 100,000 events
        worker = WorkerProcess({**env, **case.env}, workdir / "worker.log").start()
        try:
            worker.wait_ready(timeout_s=300)
            _produce(settings, ds, order[: cfg.warm_events], 0.0)
            worker.wait_accounted(cfg.warm_events, timeout_s=1800)
            return _measure(case, settings, ds, order[cfg.warm_events: cfg.warm_events + n], worker)
        finally:
            worker.stop()


def sample_accounted(worker: WorkerProcess, base: float, n: int, t0: float, timeout_s: float,
                     what: str) -> list[tuple[float, float]]:
    """Poll the worker every ``POLL_S`` until ``n`` events past ``base`` are accounted (their
    list in Redis, or final otherwise): (seconds since ``t0``, events) samples, the last one
    at ``n`` or more. Raises TimeoutError after ``timeout_s``."""
    samples: list[tuple[float, float]] = []
    while True:
        done = accounted(worker.metrics()) - base
        samples.append((time.monotonic() - t0, done))
        if done >= n:
            return samples
        if time.monotonic() - t0 >= timeout_s:
            raise TimeoutError(f"{what}: {done:.0f} of {n} events have their list in Redis")
        time.sleep(POLL_S)


def _measure(case: Case, settings: Settings, ds: Any, todo: list[Any],
             worker: WorkerProcess) -> CaseResult:
    assert worker.proc is not None
    pid, n = worker.proc.pid, len(todo)
    before = worker.metrics()
    base = accounted(before)
    producer = threading.Thread(target=_produce, args=(settings, ds, todo, case.rate))
    t0, cpu0 = time.monotonic(), cpu_seconds(pid)
    producer.start()
    try:
        samples = sample_accounted(worker, base, n, t0,
                                   max(600.0, 3 * n / max(case.rate, 1.0)), case.name)
        wall, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
    finally:
        producer.join()
    snap = worker.metrics()
    rss, peak = memory_mb(pid)
    res = CaseResult(case.name, n, round(wall, 2), round(sustained_rate(samples, n), 1),
                     round(case.rate or n / max(samples[0][0], 1e-9), 1),
                     cpu_cores=round(cpu / wall, 2), rss_mb=rss, peak_rss_mb=peak,
                     mean_batch=round(_mean(snap, before, "sidstream_batch_size"), 1),
                     mean_job_users=round(_mean(snap, before, "sidstream_model_job_users"), 1),
                     stages_ms=_stages(snap, before), accounted=_outcomes(snap, before),
                     gc_pauses=_gc_pauses(snap, before))
    if case.rate:
        res.freshness_ms = {f"p{int(q * 100)}": round(1000 * snap.quantile(
            "sidstream_freshness_seconds", q, since=before), 1) for q in (0.5, 0.95, 0.99)}
    return res


def _outcomes(snap: Snapshot, before: Snapshot) -> dict[str, int]:
    """What became of the measured events (counter differences over the case)."""
    out = {o: int(snap.get("sidstream_events_accounted_total", outcome=o)
                  - before.get("sidstream_events_accounted_total", outcome=o))
           for o in OUTCOMES}
    for name, metric in (("duplicate", "sidstream_events_duplicate_total"),
                         ("invalid", "sidstream_events_invalid_total")):
        out[name] = int(snap.total(metric) - before.total(metric))
    return {k: v for k, v in out.items() if v}


def _gc_pauses(snap: Snapshot, before: Snapshot) -> dict[str, dict[str, float]]:
    out = {}
    for gen in ("0", "1", "2"):
        n = snap.get("sidstream_gc_pause_seconds_count", generation=gen) - before.get(
            "sidstream_gc_pause_seconds_count", generation=gen)
        if n:
            ms = 1000 * (snap.get("sidstream_gc_pause_seconds_sum", generation=gen)
                         - before.get("sidstream_gc_pause_seconds_sum", generation=gen))
            out[gen] = {"n": int(n), "total_ms": round(ms, 1)}
    return out


def sustained_rate(samples: list[tuple[float, float]], n: int) -> float:
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


def _mean(snap: Snapshot, before: Snapshot, name: str, **labels: str) -> float:
    """Mean observation of a histogram over the case (``before``: its start)."""
    count = snap.get(f"{name}_count", **labels) - before.get(f"{name}_count", **labels)
    total = snap.get(f"{name}_sum", **labels) - before.get(f"{name}_sum", **labels)
    return total / count if count else 0.0


def _stages(snap: Snapshot, before: Snapshot) -> dict[str, float]:
    """Mean ms per batch of each pipeline stage over the case."""
    out = {}
    for stage in ("state", "search", "generative", "ranker", "redis", "batch"):
        mean = _mean(snap, before, "sidstream_stage_seconds", stage=stage)
        if mean:
            out[stage] = round(1000 * mean, 2)
    return out


def _row(r: CaseResult) -> str:
    fresh = " ".join(f"{k} {v:.0f} ms" for k, v in r.freshness_ms.items())
    full_gc = r.gc_pauses.get("2", {})
    return (f"{r.name:<24} {r.events_per_s:>8.0f} ev/s  cpu {r.cpu_cores:.2f} cores  "
            f"rss {r.rss_mb:.0f} MB (peak {r.peak_rss_mb:.0f})  batch {r.mean_batch:.0f}  "
            f"job {r.mean_job_users:.0f} users  "
            f"full GC {full_gc.get('n', 0):.0f}x {full_gc.get('total_ms', 0):.0f} ms  {fresh}")


def checks(results: list[CaseResult], beam: int) -> dict[str, dict[str, Any]]:
    """The benchmark's targets, each with its value and whether it holds: the ratios hold on
    any machine of this kind (absolute figures move 2-5x between them), the absolute ones on
    the machine the README quotes. A check whose cases did not run is left out."""
    by = {r.name: r for r in results}
    full, limit, bare = by.get(f"full beam {beam}"), by.get("limit"), by.get("bare")
    out: dict[str, dict[str, Any]] = {}

    def check(name: str, value: float, target: float, at_most: bool = False) -> None:
        ok = value <= target if at_most else value >= target
        out[name] = {"value": round(value, 3), "target": target, "ok": bool(ok),
                     "rule": "<=" if at_most else ">="}

    if full and limit:
        check("full_over_limit", full.events_per_s / limit.events_per_s, 0.60)
        check("full_events_per_s", full.events_per_s, 1000.0)
    if limit and bare:
        check("limit_over_bare", limit.events_per_s / bare.events_per_s, 0.50)
    for r in results:
        if r.freshness_ms and "1/3" in r.name:
            check("p99_ms_at_one_third", r.freshness_ms["p99"], 500.0, at_most=True)
        elif r.freshness_ms and r.offered_per_s == 300.0:
            check("p99_ms_at_300", r.freshness_ms["p99"], 500.0, at_most=True)
    return out


def shares(results: list[CaseResult]) -> dict[str, float]:
    """Where the limit's gap to the bare path lies (no targets): the faust floor over bare is
    the framework's share, the limit over the floor the share of the worker's own work (state,
    changelog, channels, lists)."""
    by = {r.name: r.events_per_s for r in results}
    out = {}
    for name, num, den in (("floor_over_bare", "faust floor", "bare"),
                           ("limit_over_floor", "limit", "faust floor")):
        if by.get(num) and by.get(den):
            out[name] = round(by[num] / by[den], 3)
    return out


def _report(results: list[CaseResult], cfg: StreamBenchConfig,
            history: dict[str, float]) -> None:
    by = {r.name: r for r in results}
    limit, full = by["limit"], by.get(f"full beam {cfg.beams[0]}", results[-1])
    fresh = "; ".join(f"at {r.offered_per_s:g}/s freshness p50 {r.freshness_ms['p50']:.0f} ms,"
                      f" p95 {r.freshness_ms['p95']:.0f} ms, p99 {r.freshness_ms['p99']:.0f} ms"
                      for r in results if r.freshness_ms)
    verdicts = checks(results, cfg.beams[0])
    print(f"measured users' history: {history['measured_mean']:.1f} events on average "
          f"(over every event of the data set: {history['all_events_mean']:.1f})")
    for name, c in verdicts.items():
        print(f"  {name:<22} {c['value']:>10g} (target {c['rule']} {c['target']:g}): "
              f"{'met' if c['ok'] else 'MISSED'}")
    split = shares(results)
    for name, value in split.items():
        print(f"  {name:<22} {value:>10g}")
    print(f"stream bench: full pipeline {full.events_per_s:.0f} events/s "
          f"({full.events_per_s / limit.events_per_s:.0%} of the {limit.events_per_s:.0f}/s "
          f"limit; limit at {limit.events_per_s / by['bare'].events_per_s:.0%} of bare "
          f"consume -> SET {by['bare'].events_per_s:.0f}/s); {fresh}")
    if cfg.json:
        doc = {"config": {k: str(v) if isinstance(v, Path) else v
                          for k, v in asdict(cfg).items()},
               "history": history, "checks": verdicts, "shares": split,
               "results": [asdict(r) for r in results]}
        cfg.json.write_text(json.dumps(doc, indent=2))
