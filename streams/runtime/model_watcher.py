"""The models a worker serves: generative recall + ONNX ranker, loaded, upserted and hot-swapped.

Layout under ``SIDSTREAM_MODEL_DIR``::

    recall/<version>/...   recall/LATEST     (sidstream train-recall)
    ranker/<version>/...   ranker/LATEST     (sidstream train-ranker)

At start the worker serves, per kind, the version ``SERVING`` names (the promoted one, see
``streams/jobs/promote.py``), or before any promotion the one ``LATEST`` names, else the newest
valid version (names sort by creation time). :class:`ModelWatcher` then polls: when that pointer
names another version it loads it in a thread, replays the catalogue upserts seen since start onto
it and swaps it in with one assignment (batches in flight keep the set they started with). A corrupt
or incompatible artifact is refused with one error log line and
``sidstream_model_refused_total{kind}``; the serving version stays. Either kind may be absent: the
pipeline then runs the cheap channels only (and without a ranker blends channel scores).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from export.serving import RankerSession
from models.artifacts import pointer, resolve, versions
from models.i2i.deepi2i import load_similar
from models.recall.search_process import RemoteRecaller, RemoteSIDRec
from models.recall.serving import load_recaller
from models.recall.sidrec_recaller import SIDRecRecaller
from streams.metrics import Metrics
from streams.pipeline.model_set import (
    ModelSet,
    UpsertLog,
    apply_upserts,
    current_version,
    only,
    with_model,
)
from streams.settings import Settings

if TYPE_CHECKING:
    from models.data.dataset import ItemMeta

log = logging.getLogger(__name__)

KINDS = ("recall", "ranker", "i2i")


def load_kind(kind: str, directory: Path, settings: Settings) -> Any:
    """Load one artifact (raises on anything wrong with it)."""
    if kind == "i2i":
        return load_similar(directory)
    if kind == "recall":
        rec = load_recaller(directory)
        m = settings.models
        if isinstance(rec, SIDRecRecaller):  # served float32, without a prefix cache
            if m.model_process:
                return RemoteSIDRec.start(rec, resolve(directory), int8=False, cache_tokens=0,
                                          threads=m.model_threads)
            return rec
        if m.model_int8:
            rec.quantize()
        if m.model_process:
            return RemoteRecaller.start(rec, resolve(directory), int8=m.model_int8,
                                        cache_tokens=m.prefix_cache_tokens,
                                        threads=m.model_threads)
        rec.enable_prefix_cache(settings.models.prefix_cache_tokens)
        return rec
    return RankerSession.from_artifact(directory, intra_op_threads=settings.models.model_threads)


class ModelWatcher:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        for kind in KINDS:  # at zero from the start: see streams/metrics.py
            metrics.model_refused.labels(kind)
            metrics.model_swaps.labels(kind)
        self.upserts = UpsertLog(settings.worker.upsert_log_max_items)
        self.refused: dict[str, set[str]] = {k: set() for k in KINDS}
        self.serving: dict[str, str] = {k: "" for k in KINDS}
        self.next_poll = 0.0

    def root(self, kind: str) -> Path:
        return self.settings.models.model_dir / kind

    def load_initial(self) -> ModelSet:
        """Per kind the ``LATEST`` version, else the newest one that loads (blocking)."""
        models = ModelSet()
        if not self.settings.models.enabled:
            log.info("SIDSTREAM_MODELS is off: co-visitation and popularity only")
            return models
        self._threads()
        for kind in KINDS:
            for version in versions(self.root(kind)):
                obj = self.try_load(kind, version)
                if obj is not None:
                    models = self._with(models, kind, obj, version)
                    break
            else:
                log.info("no usable %s artifact under %s", kind, self.root(kind))
        self._publish(models)
        return models

    async def poll(self, current: ModelSet) -> ModelSet | None:
        """A new set when the pointer of some kind (``SERVING``, else ``LATEST``) names a
        loadable new version, else None."""
        if not self.settings.models.enabled or time.monotonic() < self.next_poll:
            return None
        self.next_poll = time.monotonic() + self.settings.models.model_poll_s
        models, changed = current, False
        for kind in KINDS:
            version = pointer(self.root(kind))
            if not version or version == self.serving[kind] or version in self.refused[kind]:
                continue
            seq = self.upserts.seq
            metas, vectors = self.upserts.since(0)  # snapshot taken on the loop thread
            obj = await asyncio.to_thread(self._load_for_swap, kind, version, metas, vectors)
            if obj is None:
                continue
            # upserts that arrived while it loaded (applied here, on the loop: no concurrency)
            metas, vectors = self.upserts.since(seq)
            apply_upserts(only(kind, obj), metas, UpsertLog(), vectors)
            log.info("hot swap: %s %s -> %s", kind, current_version(current, kind) or "none",
                     version)
            models, changed = self._with(models, kind, obj, version), True
            self.metrics.model_swaps.labels(kind).inc()
        if changed:
            self._publish(models)
            return models
        return None

    def _load_for_swap(self, kind: str, version: str, metas: list[ItemMeta],
                       vectors: list[Any]) -> Any:
        obj = self.try_load(kind, version)
        if obj is not None:  # give it the catalogue as the serving model knows it
            apply_upserts(only(kind, obj), metas, UpsertLog(), vectors)
        return obj

    def try_load(self, kind: str, version: str) -> Any:
        """The artifact, or None after logging and counting the refusal."""
        directory = self.root(kind) / version
        try:
            obj = load_kind(kind, directory, self.settings)
        except Exception as exc:  # any failure: refuse, keep serving what we have
            self.refused[kind].add(version)
            self.metrics.model_refused.labels(kind).inc()
            log.error("%s artifact %s refused: %s", kind, directory, exc)
            return None
        log.info("%s artifact %s loaded", kind, directory)
        return obj

    def _with(self, models: ModelSet, kind: str, obj: Any, version: str) -> ModelSet:
        self.serving[kind] = version
        return with_model(models, kind, obj, version)

    def _publish(self, models: ModelSet) -> None:
        self.metrics.model_info.clear()
        for kind in KINDS:
            version = current_version(models, kind)
            if version:
                self.metrics.model_info.labels(kind, version).set(1)

    def _threads(self) -> None:
        if self.settings.models.model_threads > 0:  # else torch's default: one thread per core
            torch.set_num_threads(self.settings.models.model_threads)


