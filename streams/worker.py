"""``sidstream worker``: topics, HTTP endpoint, seed, then the faust worker in the foreground."""

from __future__ import annotations

import logging

import faust

from streams.app import build_app
from streams.catalogue import Catalogue
from streams.health import Health, serve
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
    health = Health()
    server = serve(settings.metrics_port, metrics.registry, health)
    covis, popularity, version = load_seed(settings)
    pipeline = Pipeline(settings, covis, popularity, metrics, model_version=version)
    health.models = True  # the channels are loaded (empty without a seed, which is valid)
    app, _ = build_app(settings, pipeline, metrics, health, Catalogue(popularity.items))
    log.info("worker %s: broker %s, redis %s, http :%d (/metrics /livez /readyz), model %s",
             settings.app_id, settings.broker, settings.redis_url, settings.metrics_port,
             pipeline.model_version)
    try:
        faust.Worker(app, loglevel=loglevel).execute_from_commandline()
    finally:
        server.shutdown()
    return 0
