"""docker-compose.yml cannot run here (no Docker engine): check that it parses and that everything
it references (files, commands, ports, env vars, metric names) exists and matches the code."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.cli.main import build_parser
from streams.metrics import Metrics
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(doc, dict)
    return doc


def services(compose: dict[str, Any]) -> dict[str, Any]:
    svc = compose["services"]
    assert isinstance(svc, dict)
    return svc


def test_all_services_present_and_kafka_is_kraft(compose: dict[str, Any]) -> None:
    svc = services(compose)
    assert {"kafka", "redis", "prometheus", "grafana", "worker", "replay"} <= set(svc)
    kafka_env = svc["kafka"]["environment"]
    assert "controller" in kafka_env["KAFKA_PROCESS_ROLES"]
    assert "zookeeper" not in json.dumps(compose).lower()


def test_mounted_files_and_build_context_exist(compose: dict[str, Any]) -> None:
    for name, spec in services(compose).items():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./") and name != "worker":  # worker's artifacts are optional
                assert (ROOT / source).exists(), f"{name}: {source} missing"
    assert (ROOT / "Dockerfile").is_file()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), f"Dockerfile copies missing {src}"


def test_commands_are_real_cli_commands(compose: dict[str, Any]) -> None:
    parser = build_parser()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert '"sidstream"' in (ROOT / "Dockerfile").read_text() and "sidstream" in scripts
    for name in ("worker", "replay"):
        args = parser.parse_args(services(compose)[name]["command"])
        assert args.command == name


def test_env_vars_are_settings_and_endpoints_match(compose: dict[str, Any]) -> None:
    fields = set(Settings().env())  # every SIDSTREAM_* variable
    svc = services(compose)
    for name in ("worker", "replay"):
        env = svc[name]["environment"]
        assert set(env) <= fields, set(env) - fields
        Settings.from_env({k: str(v) for k, v in env.items()})  # values parse
    env = svc["worker"]["environment"]
    broker_host = env["SIDSTREAM_BROKER"].split("://")[1]
    assert f"//{broker_host}" in svc["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert env["SIDSTREAM_REDIS_URL"].startswith("redis://redis:6379")
    port = env["SIDSTREAM_METRICS_PORT"]
    assert f"{port}:{port}" in svc["worker"]["ports"]
    assert env["SIDSTREAM_TOPIC_PARTITIONS"] == svc["replay"]["environment"][
        "SIDSTREAM_TOPIC_PARTITIONS"]


def test_worker_healthcheck_uses_the_readiness_endpoint(compose: dict[str, Any]) -> None:
    worker = services(compose)["worker"]
    probe = " ".join(worker["healthcheck"]["test"])
    port = worker["environment"]["SIDSTREAM_METRICS_PORT"]
    assert f"127.0.0.1:{port}/readyz" in probe
    assert services(compose)["replay"]["depends_on"]["worker"]["condition"] == "service_healthy"


def test_prometheus_scrapes_the_worker_port(compose: dict[str, Any]) -> None:
    conf = yaml.safe_load((ROOT / "infra/prometheus/prometheus.yml").read_text())
    job = conf["scrape_configs"][0]
    sd = job["dns_sd_configs"][0]
    assert sd["names"] == ["worker"] and str(sd["port"]) == services(compose)["worker"][
        "environment"]["SIDSTREAM_METRICS_PORT"]
    ds = yaml.safe_load((ROOT / "infra/grafana/provisioning/datasources/prometheus.yml"
                         ).read_text())
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"


def test_dashboard_queries_use_real_metrics() -> None:
    dash = json.loads((ROOT / "infra/grafana/dashboards/sidstream.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    known = {m.name + sfx for m in Metrics().registry.collect() for sfx in suffixes[m.type]}
    used = {m for e in exprs for m in re.findall(r"sidstream_[a-z_]+", e)}
    assert used and used <= known, used - known
    text = " ".join(exprs)
    for needed in ("sidstream_events_total", "sidstream_freshness_seconds_bucket",
                   "sidstream_events_invalid_total", "sidstream_stage_seconds_bucket"):
        assert needed in text
    assert "histogram_quantile(0.99" in text and "histogram_quantile(0.5" in text


def test_worker_keeps_user_states_on_a_named_volume(compose: dict[str, Any]) -> None:
    """The production stack runs the disk store; its data dir must outlive the container (a
    bind-less path would be wiped with it, and every restart would replay the changelog)."""
    worker = services(compose)["worker"]
    settings = Settings.from_env({k: str(v) for k, v in worker["environment"].items()})
    assert settings.worker.store == "rocksdb"
    mounts = dict(v.split(":")[:2] for v in worker["volumes"])
    by_target = {target: source for source, target in mounts.items()}
    source = by_target.get(str(settings.worker.data_dir))
    assert source in compose["volumes"], f"{settings.worker.data_dir} is not on a named volume"
