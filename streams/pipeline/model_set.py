"""The models one micro-batch uses, and how catalogue upserts reach them.

A :class:`ModelSet` (generative recaller, ONNX ranker, DeepI2I table) is replaced as a whole on a
hot swap (``streams/runtime/model_watcher.py``), so batches in flight keep the set they started
with. :func:`apply_upserts` gives new catalogue items a SID (frozen tokenizer) and a trie entry,
and the ranker a feature row; :class:`UpsertLog` keeps them to replay onto a swapped-in model.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from models.rank.features import N_BASE_FIELDS
from models.sid.embeddings import encode_texts

if TYPE_CHECKING:
    from export.serving import RankerSession
    from models.data.dataset import ItemMeta
    from models.recall.serving import ServedRecaller


@dataclass(frozen=True)
class ModelSet:
    """What one micro-batch uses; replaced as a whole on a hot swap."""

    recaller: ServedRecaller | None = None
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

    Text embeddings are kept so that a replay does not run the sentence encoder again. At most
    ``max_items`` items are kept (the worker sets ``SIDSTREAM_UPSERT_LOG_MAX_ITEMS``), the least
    recently upserted dropped first: a model swapped in later serves such an item only if its
    own artifact knows it.
    """

    def __init__(self, max_items: int = 1_000_000) -> None:
        self.max_items = max_items
        # id -> (seq, meta, vector), oldest upsert first
        self.items: OrderedDict[int, tuple[int, ItemMeta, Any]] = OrderedDict()
        self.seq = 0

    def __len__(self) -> int:
        return len(self.items)

    def add(self, meta: ItemMeta, vector: Any) -> None:
        self.seq += 1
        self.items[meta.item_id] = (self.seq, meta, vector)
        self.items.move_to_end(meta.item_id)
        while len(self.items) > self.max_items:
            self.items.popitem(last=False)

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
    return np.asarray(sid, np.int64)


def known_sid(features: Any, item_id: int) -> Any:
    """The SID codes already in the ranker's row of ``item_id`` (None if it has no row)."""

    if not features.n_sid_levels or item_id >= len(features.table) - 1:
        return None
    return features.table[item_id, N_BASE_FIELDS:] - 1  # stored shifted by one, 0 = unknown


def with_model(models: ModelSet, kind: str, obj: Any, version: str) -> ModelSet:
    """``models`` with ``kind`` replaced by ``obj`` at ``version``."""
    if kind == "recall":
        return replace(models, recaller=obj, recall_version=version)
    if kind == "i2i":
        return replace(models, i2i=obj, i2i_version=version)
    return replace(models, ranker=obj, ranker_version=version)


def only(kind: str, obj: Any) -> ModelSet:
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
