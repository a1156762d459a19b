"""A real Prometheus over a live worker: every Grafana query returns data, the alert rules load,
pass their promtool unit tests and fire on a real worker's series."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer

from infra.embedded import embedded_stack, free_port
from streams.runtime.topics import ensure_topics
from streams.settings import EVENTS_TOPIC, Settings
from tests.fixtures.helpers import eventually
from tests.fixtures.prometheus import ROOT, Prometheus, binary, prometheus
from tests.fixtures.stream_models import Served, copy_version, start_served
from tests.fixtures.worker_io import send

PROM = ROOT / "infra" / "prometheus"
DASHBOARDS = sorted((ROOT / "infra" / "grafana" / "dashboards").glob("*.json"))
TYPES = ("view", "click", "cart", "order")


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every dashboard."""
    out = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            out += [(panel["title"], t["expr"]) for t in panel.get("targets", []) if "expr" in t]
    return out


def test_alert_rules_and_config_pass_promtool() -> None:
    tool = binary("promtool")
    for args in (["check", "config", str(PROM / "prometheus.yml")],
                 ["check", "rules", str(PROM / "alerts.yml")],
                 ["test", "rules", str(PROM / "alerts.test.yml")]):
        run = subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, f"promtool {' '.join(args)}:\n{run.stdout}{run.stderr}"


@pytest.fixture(scope="module")
def served(trained_models: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Served, KafkaProducer]]:
    """A worker serving models on a broker and Redis of its own: the load below must not reach
    the session's workers (their tests read their lists)."""
    root = tmp_path_factory.mktemp("prometheus-worker")
    models = Path(shutil.copytree(trained_models, root / "models"))
    with embedded_stack({}) as stack:
        settings = Settings.from_env({**stack.env(), "SIDSTREAM_APP_ID": "sidstream-prometheus",
                                      "SIDSTREAM_TOPIC_PARTITIONS": "4",
                                      "SIDSTREAM_MODEL_DIR": str(models),
                                      "SIDSTREAM_DATA_DIR": str(root / "faust"),
                                      "SIDSTREAM_METRICS_PORT": str(free_port()),
                                      "SIDSTREAM_MODEL_POLL_S": "0.5"})
        ensure_topics(settings)
        served = start_served(settings.env(), root / "worker.log", models,
                              settings.redis.redis_url)
        producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks=1,
                                 linger_ms=1)
        try:
            yield served, producer
        finally:
            producer.close()
            served.worker.stop()


def _load(producer: KafkaProducer, stop: threading.Event, tag: str) -> None:
    """~100 events/s over 30 users until ``stop``: every type, one duplicate and one invalid
    message a second (the series of the dead-letter and dedup panels)."""
    n = 0
    while not stop.is_set():
        for _ in range(10):
            n += 1
            user = f"{tag}-{n % 30}"
            eid = send(producer, user, 1 + n % 40, TYPES[n % 4], price=9.5)
            if n % 100 == 0:
                send(producer, user, 1 + n % 40, TYPES[n % 4], event_id=eid, price=9.5)
                producer.send(EVENTS_TOPIC, key=user.encode(), value=b"{not json")
        producer.flush()
        time.sleep(0.1)


def _no_data(prom: Prometheus, queries: list[tuple[str, str]]) -> list[str]:
    """The queries whose result has no sample with a number (NaN: no observations)."""
    bad = []
    for title, expr in queries:
        values = [float(r["value"][1]) for r in prom.query(expr)]
        if not any(math.isfinite(v) for v in values):
            bad.append(f"{title}: {expr} -> {values}")
    return bad


@pytest.mark.integration
@pytest.mark.slow
def test_every_dashboard_query_returns_data_and_alerts_fire_on_a_live_worker(
        served: tuple[Served, KafkaProducer], tmp_path: Path) -> None:
    worker, producer = served
    queries = dashboard_queries()
    assert len(queries) >= 20
    stop = threading.Event()
    loader = threading.Thread(target=_load, args=(producer, stop, uuid.uuid4().hex[:6]))
    loader.start()
    try:
        with prometheus([f"127.0.0.1:{worker.worker.port}"], tmp_path) as prom:
            deadline = time.monotonic() + 60
            while (missing := _no_data(prom, queries)) and time.monotonic() < deadline:
                time.sleep(2)
            assert not missing, "dashboard queries without data:\n" + "\n".join(missing)
            groups = prom.api("rules")["groups"]
            rules = [r for g in groups for r in g["rules"]]
            assert len(rules) == 9 and all(r["health"] == "ok" for r in rules), rules
            # a corrupt model version: the worker refuses it, the alert on its counter fires
            copy_version(worker.models, "ranker", "29990101T000000-corrupt", corrupt=True)
            alert = eventually(lambda: [a for a in prom.api("alerts")["alerts"]
                                        if a["labels"]["alertname"] == "SidstreamModelRefused"
                                        and a["state"] == "firing"],
                               timeout_s=60, every_s=1, what="SidstreamModelRefused firing")
            assert alert[0]["labels"]["kind"] == "ranker"
    finally:
        stop.set()
        loader.join()
