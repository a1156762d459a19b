"""Data sets in sidstream's shared format, and MovieLens-100k read into the same shape.

Shared format (the one of ``../shared/data/amazon-beauty-2014/``), a directory holding:

- ``sequences.txt``: one user a line, ``user_id item_id item_id ...`` in chronological order,
  integer ids, 1-based;
- ``items.jsonl``: one item a line, ``{"item_id": int, "title": str|null, "brand": str|null,
  "categories": [[str, ...], ...]}`` (extra keys such as ``asin`` are kept in ``extra``);
- optionally ``timestamps.txt``: same layout as ``sequences.txt`` with epoch seconds instead of
  item ids, and ``users.jsonl`` with ``{"user_id": int, ...profile fields}``.

MovieLens-100k is read from the ``recbole`` wheel (``pip install --no-deps recbole==1.2.1``);
its licence forbids redistribution, so it is never copied into the repository. Ratings are kept:
the replay maps them to event types (see ``streams.jobs.replay``).

Nothing here imports torch: the stream workers use it too.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MOVIELENS = "movielens"


@dataclass(frozen=True)
class ItemMeta:
    """Catalogue entry of one item."""

    item_id: int
    title: str | None = None
    brand: str | None = None
    categories: tuple[tuple[str, ...], ...] = ()
    price: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def text(self) -> str:
        """Text used for the item's embedding: title, brand and category paths."""
        parts = [self.title or "", self.brand or ""]
        parts += [" > ".join(path) for path in self.categories]
        return " | ".join(p for p in parts if p)


@dataclass
class SeqDataset:
    """Users' chronological item sequences plus item catalogue (and optional extras)."""

    name: str
    sequences: dict[int, list[int]]
    items: dict[int, ItemMeta]
    timestamps: dict[int, list[int]] | None = None  # epoch seconds, aligned with sequences
    ratings: dict[int, list[float]] | None = None  # aligned with sequences (MovieLens)
    users: dict[int, dict[str, Any]] = field(default_factory=dict)  # profiles where known

    @property
    def n_interactions(self) -> int:
        return sum(len(s) for s in self.sequences.values())

    def data_hash(self) -> str:
        """Stable short hash of the sequences (for artifact manifests)."""
        h = hashlib.sha256()
        for user in sorted(self.sequences):
            h.update(f"{user}:{','.join(map(str, self.sequences[user]))}\n".encode())
        return h.hexdigest()[:16]


def load_dataset(source: str | Path) -> SeqDataset:
    """Load ``source``: a shared-format directory, or ``"movielens"`` for ML-100k from recbole."""
    if str(source) == MOVIELENS:
        return load_movielens()
    path = Path(source)
    if not (path / "sequences.txt").is_file():
        raise FileNotFoundError(
            f"{path} is not a data set: expected {path / 'sequences.txt'} "
            "(see models/data/dataset.py)"
        )
    sequences = _read_int_lines(path / "sequences.txt")
    items = _read_items(path / "items.jsonl") if (path / "items.jsonl").is_file() else {}
    for seq in sequences.values():
        for item in seq:
            items.setdefault(item, ItemMeta(item_id=item))
    ts_path = path / "timestamps.txt"
    timestamps = _read_int_lines(ts_path) if ts_path.is_file() else None
    users: dict[int, dict[str, Any]] = {}
    if (path / "users.jsonl").is_file():
        for row in _read_jsonl(path / "users.jsonl"):
            users[int(row.pop("user_id"))] = row
    ds = SeqDataset(path.name, sequences, items, timestamps=timestamps, users=users)
    log.info("loaded %s: %d users, %d items, %d interactions",
             ds.name, len(sequences), len(items), ds.n_interactions)
    return ds


def movielens_dir() -> Path:
    """Directory of ML-100k inside the installed recbole wheel."""
    try:
        import recbole  # lazy: optional, for MovieLens only
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise FileNotFoundError(
            "MovieLens-100k needs the recbole wheel: pip install --no-deps recbole==1.2.1"
        ) from exc
    return Path(recbole.__file__).parent / "dataset_example" / "ml-100k"


def load_movielens() -> SeqDataset:
    """ML-100k: time-ordered sequences (ties by item id), ratings, titles, genres, profiles.

    ML-100k lists 18 films twice under two ids (same title and year, e.g. "Chasing Amy" 246 and
    268): each is merged into its lowest id, and a user's second rating of the same film (307
    of them) is dropped, so a film is one item and never shown twice in a list."""
    root = movielens_dir()
    items = {}
    for cols in _read_tsv(root / "ml-100k.item"):
        item = int(cols[0])
        genres = tuple(cols[3].split()) if len(cols) > 3 and cols[3] else ()
        year = cols[2] if len(cols) > 2 else ""
        items[item] = ItemMeta(item_id=item, title=cols[1] or None,
                               categories=(genres,) if genres else (),
                               extra={"year": year} if year else {})
    same = _duplicate_films(items)
    rows: dict[int, list[tuple[int, int, float]]] = {}
    for cols in _read_tsv(root / "ml-100k.inter"):
        user, item, rating, ts = int(cols[0]), int(cols[1]), float(cols[2]), int(float(cols[3]))
        rows.setdefault(user, []).append((ts, same.get(item, item), rating))
    sequences, timestamps, ratings = {}, {}, {}
    for user, events in rows.items():
        events = _first_of_each_item(sorted(events))
        sequences[user] = [e[1] for e in events]
        timestamps[user] = [e[0] for e in events]
        ratings[user] = [e[2] for e in events]
    for dup in same:
        del items[dup]
    users = {}
    for cols in _read_tsv(root / "ml-100k.user"):
        users[int(cols[0])] = {"age": int(cols[1]), "gender": cols[2],
                               "occupation": cols[3], "zip_code": cols[4]}
    return SeqDataset(MOVIELENS, sequences, items, timestamps=timestamps, ratings=ratings,
                      users=users)


def _duplicate_films(items: dict[int, ItemMeta]) -> dict[int, int]:
    """id -> the lowest id of the same film (same title and year), for every later copy."""
    first: dict[tuple[str | None, str], int] = {}
    out = {}
    for item in sorted(items):
        meta = items[item]
        key = (meta.title, str(meta.extra.get("year", "")))
        if meta.title and key in first:
            out[item] = first[key]
        else:
            first.setdefault(key, item)
    return out


def _first_of_each_item(events: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    """(ts, item, rating) events without an item's later repeats."""
    seen: set[int] = set()
    out = []
    for event in events:
        if event[1] not in seen:
            seen.add(event[1])
            out.append(event)
    return out


def _read_int_lines(path: Path) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    with path.open() as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                out[int(parts[0])] = [int(p) for p in parts[1:]]
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: expected integers: {line.strip()!r}") from exc
    return out


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open() as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _read_items(path: Path) -> dict[int, ItemMeta]:
    items = {}
    for row in _read_jsonl(path):
        item = int(row.pop("item_id"))
        cats = tuple(tuple(str(c) for c in p) for p in (row.pop("categories", None) or []))
        price = row.pop("price", None)
        items[item] = ItemMeta(item_id=item, title=row.pop("title", None),
                               brand=row.pop("brand", None), categories=cats,
                               price=float(price) if price is not None else None, extra=row)
    return items


def _read_tsv(path: Path) -> list[list[str]]:
    with path.open(encoding="latin-1") as fh:
        next(fh)  # recbole header: name:type columns
        return [line.rstrip("\n").split("\t") for line in fh if line.strip()]
