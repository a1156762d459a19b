"""``sidstream worker``: topics, metrics endpoint, seed, then the faust worker in the foreground."""

from __future__ import annotations

import logging

import faust
from prometheus_client import start_http_server

from streams.app import build_app
from streams.metrics import Metrics
from streams.pipeline import Pipeline
from streams.seed import load_seed
from streams.settings import Settings
from streams.topics import ensure_topics

log = logging.getLogger(__name__)


def run_worker(loglevel: str = "info", settings: Settings | None = None) -> int:
    settings = settings or Settings.from_env()
    ensure_topics(settings)
    metrics = Metrics()
    start_http_server(settings.metrics_port, addr="0.0.0.0", registry=metrics.registry)
    covis, popularity, version = load_seed(settings)
    pipeline = Pipeline(settings, covis, popularity, metrics, model_version=version)
    app, _ = build_app(settings, pipeline, metrics)
    log.info("worker %s: broker %s, redis %s, metrics :%d, model %s", settings.app_id,
             settings.broker, settings.redis_url, settings.metrics_port, pipeline.model_version)
    worker = faust.Worker(app, loglevel=loglevel)
    worker.execute_from_commandline()  # returns only through SystemExit
    return 0
