"""``sidstream seed DATASET``: the cheap channels' seed file (``streams/channels/seed.py``)."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from models.data.dataset import load_dataset
from streams.channels.covisit import CoVisitation, CoVisitConfig
from streams.channels.seed import SEED_FILE, save_seed
from streams.settings import Settings

log = logging.getLogger(__name__)


def build_seed(dataset: str, out: str | None = None, settings: Settings | None = None) -> Path:
    settings = settings or Settings.from_env()
    ds = load_dataset(dataset)
    ch = settings.channels
    covis = CoVisitation(CoVisitConfig(ch.covisit_window, ch.covisit_neighbors))
    counts: Counter[int] = Counter()
    for seq in tqdm(ds.sequences.values(), desc="co-visitation", unit="user"):
        covis.add_sequence(seq)
        counts.update(seq)
    path = Path(out) if out else settings.models.model_dir / SEED_FILE
    version = f"seed-{ds.data_hash()}"
    save_seed(path, covis, counts, version, ds.name)
    log.info("seed %s: %d items with neighbours, %d popular items -> %s",
             version, len(covis), len(counts), path)
    return path
