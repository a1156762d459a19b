"""``sidstream replay``: a data set as contract events on ``sidstream-events``.

Order: MovieLens interactions in their real timestamp order (rating >= 4 -> ``order``, else
``click``); shared-format sets without timestamps keep each user's order and interleave users by
spreading each user's events over a common time span (seeded). ``ts`` is the wall-clock time of
sending (so freshness is measured end to end); event ids are deterministic
(``{dataset}:{user}:{position}``), so replaying twice is deduplicated by the worker.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from kafka import KafkaProducer
from tqdm import tqdm

from models.data.dataset import SeqDataset, load_dataset
from models.data.timeline import Interaction, interactions
from streams.contracts.events import Event, event_to_json
from streams.settings import EVENTS_TOPIC, ITEMS_TOPIC, Settings

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class ReplayConfig:
    dataset: str
    rate: float = 0.0  # events/s; 0 = as fast as the producer goes
    limit: int = 0  # 0 = all events
    items: bool = True  # send the catalogue to sidstream-items first
    seed: int = 0


@dataclass(frozen=True)
class ReplayStats:
    events: int
    items: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def item_payload(ds: SeqDataset, item_id: int) -> bytes:
    meta = ds.items[item_id]
    return json.dumps({"item_id": item_id, "title": meta.title, "brand": meta.brand,
                       "categories": [list(p) for p in meta.categories],
                       "price": meta.price}).encode()


def make_producer(settings: Settings) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all",
                         enable_idempotence=False, linger_ms=5,
                         batch_size=256 * 1024, max_in_flight_requests_per_connection=1,
                         client_id="sidstream-replay")


def iter_events(ds: SeqDataset, cfg: ReplayConfig) -> Iterator[Event]:
    todo = interactions(ds, cfg.seed)
    if cfg.limit:
        todo = todo[: cfg.limit]
    for it in todo:
        yield event_of(ds, it)


def event_of(ds: SeqDataset, it: Interaction) -> Event:
    """A replayed interaction as a contract event, stamped with the current time."""
    return Event(f"{ds.name}:{it.user_id}:{it.position}", it.user_id, it.item_id, it.type,
                 int(time.time() * 1000), ds.items[it.item_id].price)


def pace(start: float, sent: int, rate: float) -> None:
    """Sleep until event number ``sent`` is due at ``rate`` events/s after ``start`` (monotonic
    time): paced against the schedule, not per event. No-op for ``rate`` 0."""
    if rate > 0:
        ahead = start + sent / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)


def run_replay(cfg: ReplayConfig, settings: Settings | None = None) -> ReplayStats:
    settings = settings or Settings.from_env()
    ds = load_dataset(cfg.dataset)
    producer = make_producer(settings)
    n_items = 0
    try:
        if cfg.items:
            for item_id in tqdm(sorted(ds.items), desc="catalogue", unit="item", leave=False):
                producer.send(ITEMS_TOPIC, key=str(item_id).encode(),
                              value=item_payload(ds, item_id))
            n_items = len(ds.items)
        total = min(cfg.limit, ds.n_interactions) if cfg.limit else ds.n_interactions
        start = time.monotonic()
        sent = 0
        with tqdm(total=total, desc=f"replay {ds.name}", unit="ev") as bar:
            for ev in iter_events(ds, cfg):
                pace(start, sent, cfg.rate)
                producer.send(EVENTS_TOPIC, key=ev.user_key.encode(), value=event_to_json(ev))
                sent += 1
                if sent % 500 == 0:
                    bar.update(500)
            bar.update(sent % 500)
        producer.flush()
        stats = ReplayStats(sent, n_items, time.monotonic() - start)
    finally:
        producer.close()
    log.info("replayed %d events (+%d catalogue upserts) in %.1fs: %.0f events/s",
             stats.events, stats.items, stats.seconds, stats.rate)
    return stats
