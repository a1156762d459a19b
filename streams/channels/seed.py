"""The seed file of the cheap channels: co-visitation and popularity counts from a data set.

``sidstream seed DATASET`` (``streams/jobs/seed.py``) writes ``$SIDSTREAM_MODEL_DIR/seed.json.gz``;
a worker that finds it starts with those counts instead of from nothing (the stream keeps
updating them).
"""

from __future__ import annotations

import gzip
import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

from streams.channels.covisit import CoVisitation, CoVisitConfig
from streams.channels.popularity import DecayedPopularity
from streams.settings import Settings

log = logging.getLogger(__name__)

SEED_FILE = "seed.json.gz"
SEED_FORMAT = 1


def save_seed(path: Path, covis: CoVisitation, counts: Counter[int], version: str,
              dataset: str) -> None:
    """Write the seed atomically: a worker never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"format": SEED_FORMAT, "version": version, "dataset": dataset,
           "created_ms": int(time.time() * 1000), "covisit": covis.to_rows(),
           "popularity": sorted(counts.items(), key=lambda kv: -kv[1])}
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wt") as fh:
        json.dump(doc, fh)
    tmp.replace(path)


def load_seed(settings: Settings) -> tuple[CoVisitation, DecayedPopularity, str]:
    """Channels for a worker: from the seed file when there is one, else empty."""
    ch = settings.channels
    covis_cfg = CoVisitConfig(ch.covisit_window, ch.covisit_neighbors, ch.covisit_max_items)
    popularity = DecayedPopularity(ch.popularity_half_life_s, max_items=ch.popularity_max_items)
    path = settings.models.model_dir / SEED_FILE
    if not path.is_file():
        log.info("no seed at %s: co-visitation and popularity start empty", path)
        return CoVisitation(covis_cfg), popularity, "baseline"
    try:
        with gzip.open(path, "rt") as fh:
            doc: dict[str, Any] = json.load(fh)
        if doc.get("format") != SEED_FORMAT:
            raise ValueError(f"seed format {doc.get('format')!r}, expected {SEED_FORMAT}")
        covis = CoVisitation.from_rows(doc["covisit"], covis_cfg)
        popularity.seed(((i, c) for i, c in doc["popularity"]), int(time.time() * 1000))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.error("seed %s refused (%s): starting empty", path, exc)
        empty = DecayedPopularity(ch.popularity_half_life_s, max_items=ch.popularity_max_items)
        return CoVisitation(covis_cfg), empty, "baseline"
    log.info("seed %s loaded: %d items", doc["version"], len(covis))
    return covis, popularity, f"baseline+{doc['version']}"
