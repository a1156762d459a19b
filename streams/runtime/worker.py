"""``sidstream worker``: topics, HTTP endpoint, seed, then the faust worker in the foreground."""

from __future__ import annotations

import logging

import faust

from models.heap import settle_heap
from models.sid.embeddings import encode_texts
from streams.channels.seed import load_seed
from streams.metrics import Metrics
from streams.pipeline.batch import Pipeline
from streams.pipeline.state import SeqEvent, UserState
from streams.runtime.app import build_app
from streams.runtime.catalogue import Catalogue
from streams.runtime.gc_pauses import watch_gc
from streams.runtime.health import Health, serve
from streams.runtime.model_watcher import ModelWatcher
from streams.runtime.topics import ensure_topics
from streams.settings import Settings

log = logging.getLogger(__name__)


def warm_up(pipeline: Pipeline) -> None:
    """First calls are slow (lazy init, allocations): make them before taking traffic."""

    models = pipeline.models
    if models.recaller is None and models.ranker is None:
        return
    item = next(iter(models.recaller.table.sids)) if models.recaller else 1
    state = UserState("warm-up", seq=[SeqEvent(item, "click", 0)])
    pipeline.recommend_many({"warm-up": state})
    pipeline.generative.cache.clear()
    if models.recaller is not None:  # the sentence encoder for catalogue upserts

        encode_texts(["warm up"])


class QuietWorker(faust.Worker):
    """faust's worker without its terminal spinner: to spin on every log record, faust sets
    the root logger to DEBUG, so every debug call of every library (faust's recovery loop logs
    each changelog record) builds and dispatches a record: ~7 % of the event loop's time."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None


def run_worker(loglevel: str = "info", settings: Settings | None = None) -> int:
    settings = settings or Settings.from_env()
    ensure_topics(settings)
    metrics = Metrics()
    health = Health()
    server = serve(settings.worker.metrics_port, metrics.registry, health)
    covis, popularity, version = load_seed(settings)
    pipeline = Pipeline(settings, covis, popularity, metrics, model_version=version)
    watcher = ModelWatcher(settings, metrics)
    pipeline.models = watcher.load_initial()
    warm_up(pipeline)
    health.models = True  # what model_dir offers is loaded (none at all is valid: baseline)
    catalogue = Catalogue(popularity.items, settings.worker.catalogue_max_items)
    if pipeline.models.recaller is not None:
        catalogue.add(pipeline.models.recaller.table.sids)
    app, _ = build_app(settings, pipeline, metrics, health, catalogue, watcher)
    settle_heap()  # what start-up loaded stays: out of the cyclic collector's way
    watch_gc(metrics.gc_pause)
    log.info("worker %s (%s): broker %s, redis %s, http :%d (/metrics /livez /readyz), "
             "model %s", settings.kafka.app_id,
             f"static member {settings.kafka.group_instance_id}"
             if settings.kafka.group_instance_id else "dynamic member", settings.kafka.broker,
             settings.redis.redis_url, settings.worker.metrics_port, pipeline.version)
    try:
        QuietWorker(app, loglevel=loglevel).execute_from_commandline()
    finally:
        server.shutdown()
    return 0
