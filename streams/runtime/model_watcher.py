"""The models a worker serves: generative recall + ONNX ranker, loaded, upserted and hot-swapped.

Layout under ``SIDSTREAM_MODEL_DIR``::

    recall/<version>/...   recall/LATEST     (sidstream train-recall)
    ranker/<version>/...   ranker/LATEST     (sidstream train-ranker)

At start the worker serves, per kind, the version ``SERVING`` names (the promoted one, see
``streams/jobs/promote.py``), or before any promotion the one ``LATEST`` names, else the newest
valid
version (names sort by creation time). :class:`ModelWatcher` then polls: when that pointer names
another version it loads it in a thread, replays the catalogue upserts seen since start onto it
and swaps it in with one assignment (batches in flight keep the set they started with). A corrupt
or incompatible artifact is refused with one error log line and
``sidstream_model_refused_total{kind}``; the serving version stays. Either kind may be absent:
the pipeline then runs the cheap channels only (and without a ranker blends channel scores).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streams.contracts.events import Id
from streams.metrics import Metrics
from streams.settings import Settings

if TYPE_CHECKING:
    from export.serving import RankerSession
    from models.data.dataset import ItemMeta
    from models.recall.recaller import GenerativeRecaller

log = logging.getLogger(__name__)

KINDS = ("recall", "ranker", "i2i")
LATEST = "LATEST"  # newest version, written by training
SERVING = "SERVING"  # the promoted version (``sidstream promote``); wins over LATEST


def model_item_id(item: Id) -> int | None:
    """The models' integer id of a stream item id (ints and decimal strings), else None."""
    if isinstance(item, bool):
        return None
    if isinstance(item, int):
        return item if item > 0 else None
    if isinstance(item, str) and item.isdecimal() and len(item) < 19:
        value = int(item)
        return value if value > 0 else None
    return None


@dataclass(frozen=True)
class ModelSet:
    """What one micro-batch uses; replaced as a whole on a hot swap."""

    recaller: GenerativeRecaller | None = None
    ranker: RankerSession | None = None
    recall_version: str = ""
    ranker_version: str = ""
    i2i: Any = None  # similar-items table [max item id + 1, k] (models/i2i/deepi2i.py)
    i2i_version: str = ""

    @property
    def version(self) -> str:
        """``model_version`` in the Redis payload."""
        parts = [f"recall:{self.recall_version}" if self.recaller else "",
                 f"ranker:{self.ranker_version}" if self.ranker else "",
                 f"i2i:{self.i2i_version}" if self.i2i is not None else ""]
        return "+".join(p for p in parts if p) or "baseline"


class UpsertLog:
    """Catalogue upserts seen since start (latest per item), replayed onto a swapped-in model.

    Text embeddings are kept so that a replay does not run the sentence encoder again.
    """

    def __init__(self) -> None:
        self.items: dict[int, tuple[int, ItemMeta, Any]] = {}  # id -> (seq, meta, vector)
        self.seq = 0

    def __len__(self) -> int:
        return len(self.items)

    def add(self, meta: ItemMeta, vector: Any) -> None:
        self.seq += 1
        self.items[meta.item_id] = (self.seq, meta, vector)

    def since(self, seq: int) -> tuple[list[ItemMeta], list[Any]]:
        """Upserts after sequence number ``seq`` (0: all), in upsert order."""
        rows = sorted(v for v in self.items.values() if v[0] > seq)
        return [r[1] for r in rows], [r[2] for r in rows]


def embed_missing(models: ModelSet, metas: list[ItemMeta]) -> list[Any]:
    """Text embeddings of the items the recaller does not know yet (None for the others).

    The slow part of an upsert (the sentence encoder) and free of shared state: the worker runs
    it in a thread, then applies the upserts on the event loop.
    """
    vecs: list[Any] = [None] * len(metas)
    rec = models.recaller
    if rec is None:
        return vecs
    todo = [i for i, m in enumerate(metas) if m.item_id not in rec.table.sids and m.text()]
    if todo:
        from models.sid.embeddings import encode_texts

        encoded = encode_texts([metas[i].text() for i in todo])
        for j, i in enumerate(todo):
            vecs[i] = encoded[j]
    return vecs


def apply_upserts(models: ModelSet, metas: list[ItemMeta], log_: UpsertLog,
                  vectors: list[Any] | None = None) -> int:
    """New catalogue items into the models: SID (frozen tokenizer) + trie, ranker feature row.

    ``vectors``: text embeddings for items the recaller does not know (``embed_missing``; an
    item with neither a vector nor a known SID gets ranker features only). Known items keep
    their SID. Returns the number of items new to the recaller.
    """
    vecs = list(vectors) if vectors is not None else embed_missing(models, metas)
    rec = models.recaller
    new = 0
    for meta, vec in zip(metas, vecs, strict=True):
        sid = None
        if rec is not None:
            known = meta.item_id in rec.table.sids
            if known or vec is not None:
                sid = rec.add_item(meta.item_id, vector=vec)
                new += not known
        if models.ranker is not None:
            feats = models.ranker.features
            feats.upsert(meta.item_id, meta, _sid_array(sid) if sid is not None else
                         known_sid(feats, meta.item_id))
        log_.add(meta, vec)
    return new


def _sid_array(sid: tuple[int, ...]) -> Any:
    import numpy as np

    return np.asarray(sid, np.int64)


def known_sid(features: Any, item_id: int) -> Any:
    """The SID codes already in the ranker's row of ``item_id`` (None if it has no row)."""
    from models.rank.features import N_BASE_FIELDS

    if not features.n_sid_levels or item_id >= len(features.table) - 1:
        return None
    return features.table[item_id, N_BASE_FIELDS:] - 1  # stored shifted by one, 0 = unknown


def artifact_versions(root: Path) -> list[str]:
    """Versions under ``root``, the one to serve (:func:`pointer`) first, then newest first."""
    if not root.is_dir():
        return []
    names = sorted((p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                   reverse=True)
    first = pointer(root)
    if first in names:
        names.remove(first)
        names.insert(0, first)
    return names


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def latest(root: Path) -> str | None:
    return _read(root / LATEST)


def pointer(root: Path) -> str | None:
    """The version workers serve: ``SERVING`` once anything was promoted, else ``LATEST``."""
    return _read(root / SERVING) or latest(root)


def load_kind(kind: str, directory: Path, settings: Settings) -> Any:
    """Load one artifact (raises on anything wrong with it)."""
    if kind == "i2i":
        from models.i2i.deepi2i import load_similar

        return load_similar(directory)
    if kind == "recall":
        from models.recall.recaller import GenerativeRecaller

        rec = GenerativeRecaller.load(directory)
        if settings.model_int8:
            rec.quantize()
        if settings.model_process:
            from models.artifacts import resolve
            from models.recall.search_process import RemoteRecaller

            return RemoteRecaller.start(rec, resolve(directory), settings.model_int8,
                                        settings.prefix_cache_tokens, settings.model_threads)
        rec.enable_prefix_cache(settings.prefix_cache_tokens)
        return rec
    from export.serving import RankerSession

    return RankerSession.from_artifact(directory, intra_op_threads=settings.model_threads)


class ModelWatcher:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.upserts = UpsertLog()
        self.refused: dict[str, set[str]] = {k: set() for k in KINDS}
        self.serving: dict[str, str] = {k: "" for k in KINDS}
        self.next_poll = 0.0

    def root(self, kind: str) -> Path:
        return self.settings.model_dir / kind

    def load_initial(self) -> ModelSet:
        """Per kind the ``LATEST`` version, else the newest one that loads (blocking)."""
        models = ModelSet()
        if not self.settings.models:
            log.info("SIDSTREAM_MODELS is off: co-visitation and popularity only")
            return models
        self._threads()
        for kind in KINDS:
            for version in artifact_versions(self.root(kind)):
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
        if not self.settings.models or time.monotonic() < self.next_poll:
            return None
        self.next_poll = time.monotonic() + self.settings.model_poll_s
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
            apply_upserts(_only(kind, obj), metas, UpsertLog(), vectors)
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
            apply_upserts(_only(kind, obj), metas, UpsertLog(), vectors)
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
        import torch

        if self.settings.model_threads > 0:  # else torch's default: one thread per core
            torch.set_num_threads(self.settings.model_threads)


def with_model(models: ModelSet, kind: str, obj: Any, version: str) -> ModelSet:
    """``models`` with ``kind`` replaced by ``obj`` at ``version``."""
    if kind == "recall":
        return replace(models, recaller=obj, recall_version=version)
    if kind == "i2i":
        return replace(models, i2i=obj, i2i_version=version)
    return replace(models, ranker=obj, ranker_version=version)


def _only(kind: str, obj: Any) -> ModelSet:
    """A set holding just ``obj`` (catalogue upserts concern the recaller and the ranker)."""
    if kind == "recall":
        return ModelSet(recaller=obj)
    return ModelSet(ranker=obj) if kind == "ranker" else ModelSet()


def current_version(models: ModelSet, kind: str) -> str:
    if kind == "recall":
        return models.recall_version if models.recaller else ""
    if kind == "i2i":
        return models.i2i_version if models.i2i is not None else ""
    return models.ranker_version if models.ranker else ""
