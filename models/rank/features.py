"""Ranker inputs on the host: the item feature table, user context features, typed model inputs.

The ranker never embeds raw item ids. Every item id is turned into one int64 feature row
``[id_row, category, brand, price_bucket, sid_1 .. sid_L]`` of :class:`ItemFeatures`; the model
owns the embedding tables those rows index (see ``models/rank/model.py``). Training gathers the rows
on the host (numpy ``take``, :class:`ModelInputs`); serving passes the live table itself as a graph
input and the graph gathers (:class:`ServingInputs`, ``models.rank.model.ServingRanker``). Either
way the exported ONNX graph holds no catalogue data, so the catalogue can grow online:
:meth:`ItemFeatures.upsert` adds rows for new items at any time, without touching the model.

- ``id_row``: the item id for the items the model was trained on (1..n_trained_items), and the
  shared "unknown item" row ``n_trained_items + 1`` for any newer item. Training replaces a share
  of ids by that row (id dropout), so a new item is scored from its side features.
- ``category`` / ``brand``: ids in vocabularies fixed at training time; unseen strings -> 0.
- ``price_bucket``: 1 + log-price quantile bucket (edges from the training catalogue); 0 unknown.
- ``sid_k``: semantic-ID token of level k shifted by one; 0 = unknown (SID -1 or no SID).

Row 0 of the table is all zeros: item id 0 is padding. Nothing here imports torch.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from models.artifacts import latest, resolve
from models.data.dataset import ItemMeta, SeqDataset

log = logging.getLogger(__name__)


# Event-type ids of history entries; the names are the stream's event types
# (streams/contracts/events.py).
EVENT_IDS: dict[str, int] = {"view": 1, "click": 2, "cart": 3, "order": 4}
N_EVENT_TYPES = len(EVENT_IDS) + 1  # + padding
N_CONTEXT = len(EVENT_IDS) + 3  # event mix, history length, recency known, recency
RECENCY_SCALE_S = 30 * 24 * 3600.0  # log1p(age) is divided by log1p(this)
N_BASE_FIELDS = 4  # id_row, category, brand, price_bucket; SID tokens follow


class ModelInputs(NamedTuple):
    """What the ranker (torch or ONNX) consumes; numpy arrays, U users, C candidates each."""

    hist_feats: np.ndarray  # int64 [U, N, F], history right-aligned (most recent last), 0 padded
    hist_events: np.ndarray  # int64 [U, N], EVENT_IDS values, 0 = padding
    context: np.ndarray  # float32 [U, N_CONTEXT]
    cand_feats: np.ndarray  # int64 [U, C, F], row of zeros = padded candidate


class ServingInputs(NamedTuple):
    """What the serving graph (``models.rank.model.ServingRanker``) consumes: item ids, no features.

    The graph gathers the feature rows from ``item_table`` and computes the context itself, so
    the host only slices histories to N and fixes dtypes (see :func:`serving_inputs`).
    """

    item_table: np.ndarray  # int64 [R, F] ItemFeatures.table (bound once; rows grow online)
    hist_items: np.ndarray  # int64 [U, N] right-aligned item ids, 0 = padding
    hist_events: np.ndarray  # int64 [U, N] EVENT_IDS (zeroed in the graph where hist_items <= 0)
    last_age_s: np.ndarray  # float32 [U] seconds since the last event, NaN = unknown
    cand_items: np.ndarray  # int64 [U, C], 0 = padding


def category_key(meta: ItemMeta) -> str | None:
    """The category an item is filed under: its first category path, joined."""
    return " > ".join(meta.categories[0]) if meta.categories and meta.categories[0] else None


def brand_key(meta: ItemMeta) -> str | None:
    brand = (meta.brand or "").strip()
    return brand if brand and brand.lower() != "unknown" else None


@dataclass
class ItemFeatures:
    """Item id -> feature row table (numpy), growable for items upserted after training."""

    table: np.ndarray  # int64 [rows, F]; row = item id, last row = unknown-item sentinel
    price: np.ndarray  # float32 [rows]; NaN = unknown (used by the value term of the blend)
    n_trained_items: int  # ids 1..n_trained_items have their own id embedding
    categories: dict[str, int]  # vocabularies fixed at training time (id 0 = unknown)
    brands: dict[str, int]
    price_edges: np.ndarray  # float64 [n_price_buckets - 2]: log-price bucket edges
    sid_vocab: int = 1  # rows per SID level (codes + 1)
    _unknown_row: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._unknown_row = np.zeros(self.n_fields, np.int64)
        self._unknown_row[0] = self.unknown_id
        if len(self.table) < 2 or (self.table[-1] != self._unknown_row).any():
            raise ValueError("the feature table's last row must be the unknown-item sentinel")
        self.price[0] = np.nan

    @property
    def n_fields(self) -> int:
        return int(self.table.shape[1])

    @property
    def n_sid_levels(self) -> int:
        return self.n_fields - N_BASE_FIELDS

    @property
    def unknown_id(self) -> int:
        return self.n_trained_items + 1

    @property
    def n_price_buckets(self) -> int:
        return len(self.price_edges) + 2  # + unknown, + the bucket above the last edge

    @classmethod
    def empty(cls, n_trained_items: int, categories: dict[str, int], brands: dict[str, int],
              price_edges: np.ndarray, n_sid_levels: int = 0, sid_vocab: int = 1
              ) -> ItemFeatures:
        """A table with no items yet (ids 1..n_trained_items get rows by ``upsert``)."""
        rows = n_trained_items + 2
        table = np.zeros((rows, N_BASE_FIELDS + n_sid_levels), np.int64)
        table[1:, 0] = n_trained_items + 1  # not upserted: unknown item (incl. the sentinel)
        return cls(table, np.full(rows, np.nan, np.float32), n_trained_items, categories,
                   brands, np.asarray(price_edges, np.float64), sid_vocab)

    @classmethod
    def from_dataset(cls, ds: SeqDataset, item_sid: np.ndarray | None = None,
                     n_price_buckets: int = 10) -> ItemFeatures:
        """Vocabularies and table from ``ds``'s catalogue; ``item_sid`` [n_items+1, L] or None."""
        n_items = max(ds.items, default=0)
        cats = sorted({k for m in ds.items.values() if (k := category_key(m)) is not None})
        brands = sorted({k for m in ds.items.values() if (k := brand_key(m)) is not None})
        prices = np.array([m.price for m in ds.items.values() if m.price and m.price > 0])
        qs = np.linspace(0, 1, n_price_buckets)[1:-1]
        edges = np.unique(np.quantile(np.log(prices), qs)) if len(prices) else np.zeros(0)
        n_sid = 0 if item_sid is None else int(item_sid.shape[1])
        sid_vocab = 1 if item_sid is None else int(max(item_sid.max(initial=-1), -1)) + 2
        feats = cls.empty(n_items, {c: i + 1 for i, c in enumerate(cats)},
                          {b: i + 1 for i, b in enumerate(brands)}, edges, n_sid, sid_vocab)
        for item, meta in ds.items.items():
            sid = None if item_sid is None or item >= len(item_sid) else item_sid[item]
            feats.upsert(item, meta, sid)
        log.info("item features: %d items, %d categories, %d brands, %d price buckets, "
                 "%d SID levels", n_items, len(cats), len(brands), feats.n_price_buckets, n_sid)
        return feats

    def price_bucket(self, price: float | None) -> int:
        if price is None or not price > 0 or not math.isfinite(price):
            return 0
        return 1 + int(np.searchsorted(self.price_edges, math.log(price), side="right"))

    def upsert(self, item_id: int, meta: ItemMeta, sid: np.ndarray | None = None) -> None:
        """Add or replace the row of ``item_id`` (grows the table for new ids)."""
        if item_id <= 0:
            raise ValueError(f"item ids are positive integers, got {item_id}")
        self._grow(item_id + 1)
        row = self.table[item_id]
        row[0] = item_id if item_id <= self.n_trained_items else self.unknown_id
        row[1] = self.categories.get(category_key(meta) or "", 0)
        row[2] = self.brands.get(brand_key(meta) or "", 0)
        row[3] = self.price_bucket(meta.price)
        if self.n_sid_levels:
            codes = np.full(self.n_sid_levels, -1) if sid is None else np.asarray(sid)
            codes = np.where((codes >= 0) & (codes < self.sid_vocab - 1), codes, -1)
            row[N_BASE_FIELDS:] = codes[: self.n_sid_levels] + 1
        self.price[item_id] = meta.price if meta.price is not None else np.nan

    def _grow(self, rows: int) -> None:
        """Make room for ids < ``rows``, keeping one spare row past them: the unknown sentinel."""
        if rows < len(self.table):
            return
        new = max(rows + 1, 2 * len(self.table))
        table = np.zeros((new, self.n_fields), np.int64)
        table[: len(self.table) - 1] = self.table[:-1]
        table[len(self.table) - 1:] = self._unknown_row  # ids never upserted: unknown item
        price = np.full(new, np.nan, np.float32)
        price[: len(self.price) - 1] = self.price[:-1]
        self.table, self.price = table, price

    def gather(self, ids: np.ndarray) -> np.ndarray:
        """Feature rows of ``ids`` (any shape, int) -> int64 [*ids.shape, F].

        0 (and negative ids) -> the zero padding row; ids past the table -> the unknown-item
        sentinel (the last row, never an item's own: ``_grow`` keeps it spare).
        """
        return np.take(self.table, ids, axis=0, mode="clip")

    def prices(self, ids: np.ndarray) -> np.ndarray:
        """Prices of ``ids`` (NaN where unknown or padding)."""
        return np.take(self.price, ids, axis=0, mode="clip")

    def save(self, directory: Path) -> list[Path]:
        """Write ``features.npz`` and ``features.json`` into ``directory``; return the paths."""
        npz, meta = directory / "features.npz", directory / "features.json"
        np.savez(npz, table=self.table, price=self.price, price_edges=self.price_edges)
        meta.write_text(json.dumps({"n_trained_items": self.n_trained_items,
                                    "sid_vocab": self.sid_vocab, "categories": self.categories,
                                    "brands": self.brands}, ensure_ascii=False))
        return [npz, meta]

    @classmethod
    def load(cls, directory: Path) -> ItemFeatures:
        meta = json.loads((directory / "features.json").read_text())
        with np.load(directory / "features.npz", allow_pickle=False) as z:
            return cls(z["table"], z["price"], int(meta["n_trained_items"]),
                       dict(meta["categories"]), dict(meta["brands"]), z["price_edges"],
                       int(meta["sid_vocab"]))


_ONE_HOT = np.eye(N_EVENT_TYPES, dtype=np.float32)
_RECENCY_NORM = 1.0 / math.log1p(RECENCY_SCALE_S)


def context_features(hist_events: np.ndarray, last_age_s: np.ndarray | None) -> np.ndarray:
    """User context [U, N_CONTEXT]: event-type mix, log history length, recency of last event.

    ``last_age_s`` [U]: seconds between the user's last event and now (NaN or None: unknown).
    Vectorised throughout: this runs on every serving call.
    """
    n_users, n_hist = hist_events.shape
    counts = np.take(_ONE_HOT, hist_events, axis=0, mode="clip").sum(1)  # [U, N_EVENT_TYPES]
    length = n_hist - counts[:, 0]  # non-padding entries
    out = np.zeros((n_users, N_CONTEXT), np.float32)
    out[:, : N_EVENT_TYPES - 1] = counts[:, 1:] / np.maximum(length, 1.0)[:, None]
    out[:, N_EVENT_TYPES - 1] = np.log1p(length) / math.log1p(max(n_hist, 1))
    if last_age_s is not None:
        age = np.asarray(last_age_s, np.float32)
        known = np.isfinite(age) & (length > 0)
        out[:, -2] = known
        age = np.where(known, np.maximum(age, 0.0), 0.0)
        out[:, -1] = np.minimum(np.log1p(age) * _RECENCY_NORM, 1.5)
    return out


def fit_history(hist: np.ndarray, n_hist: int) -> np.ndarray:
    """Keep the ``n_hist`` most recent columns of a right-aligned [U, *] array (left-pad 0)."""
    if hist.shape[1] >= n_hist:
        return hist[:, hist.shape[1] - n_hist:]
    pad = np.zeros((hist.shape[0], n_hist - hist.shape[1]), hist.dtype)
    return np.concatenate([pad, hist], axis=1)


def build_inputs(features: ItemFeatures, hist_items: np.ndarray, hist_events: np.ndarray,
                 last_age_s: np.ndarray | None, cand_items: np.ndarray, n_hist: int
                 ) -> ModelInputs:
    """Gather feature rows and context for U users: history [U, *] right-aligned, cands [U, C]."""
    hist_items = fit_history(np.asarray(hist_items, np.int64), n_hist)
    hist_events = fit_history(np.asarray(hist_events, np.int64), n_hist)
    hist_events = np.where(hist_items > 0, hist_events, 0)
    return ModelInputs(features.gather(hist_items), hist_events,
                       context_features(hist_events, last_age_s),
                       features.gather(np.asarray(cand_items, np.int64)))


def serving_inputs(features: ItemFeatures, hist_items: np.ndarray, hist_events: np.ndarray,
                   last_age_s: np.ndarray | None, cand_items: np.ndarray, n_hist: int
                   ) -> ServingInputs:
    """The host part of serving: histories [U, *] cut/padded to ``n_hist``, dtypes fixed."""
    hist_items = fit_history(np.asarray(hist_items, np.int64), n_hist)
    if last_age_s is None:
        age = np.full(len(hist_items), np.nan, np.float32)
    else:
        age = np.asarray(last_age_s, np.float32)
    return ServingInputs(features.table, np.ascontiguousarray(hist_items),
                         np.ascontiguousarray(fit_history(np.asarray(hist_events, np.int64),
                                                          n_hist)),
                         age, np.ascontiguousarray(cand_items, np.int64))


def model_inputs(s: ServingInputs) -> ModelInputs:
    """The host-side equivalent of the serving graph's gather + context (the reference path)."""
    hist = np.take(s.item_table, s.hist_items, axis=0, mode="clip")
    events = np.where(s.hist_items > 0, s.hist_events, 0)
    return ModelInputs(hist, events, context_features(events, s.last_age_s),
                       np.take(s.item_table, s.cand_items, axis=0, mode="clip"))


def load_item_sid(path: Path | str, n_items: int) -> np.ndarray:
    """SID tokens per item as a dense int64 array [rows, levels]; -1 = item without SID.

    ``path``: an ``item_sid.npy`` [n_items + 1, levels] (row 0 padding), or the tokenizer's
    ``sids.npz`` (``items`` [n], ``sids`` [n, levels], see ``models/sid/train.py``), or a
    directory holding either -- or an artifact root whose ``LATEST`` names such a directory.
    Items past the array (newer than it) count as unknown.
    """
    file = _sid_file(Path(path))
    if file.suffix == ".npz":
        with np.load(file, allow_pickle=False) as z:
            items, codes = z["items"].astype(np.int64), z["sids"]
        sid = np.full((max(n_items, int(items.max(initial=0))) + 1, codes.shape[1]), -1, np.int64)
        sid[items] = codes
    else:
        sid = np.load(file, allow_pickle=False)
    if sid.ndim != 2 or not np.issubdtype(sid.dtype, np.integer):
        raise ValueError(f"{file}: expected a 2-D integer array, got {sid.dtype} {sid.shape}")
    covered = int((sid[1: n_items + 1] >= 0).all(axis=1).sum())
    if covered < n_items:
        log.warning("%s gives SIDs to %d of %d items; the rest get unknown SID tokens",
                    file, covered, n_items)
    return sid.astype(np.int64)


def _sid_file(path: Path) -> Path:
    names = ("item_sid.npy", "sids.npz")
    if path.is_dir() and not any((path / n).is_file() for n in names) and latest(path):
        path = resolve(path)
    if path.is_dir():
        path = next((path / n for n in names if (path / n).is_file()), path / names[0])
    if not path.is_file():
        raise FileNotFoundError(f"no SID table at {path} (expected item_sid.npy "
                                "[n_items + 1, levels] or the tokenizer's sids.npz)")
    return path
