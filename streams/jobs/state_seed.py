"""Synthetic users' states written straight to the user-state table's changelog (``bench state``).

Pushing a million users' histories through the pipeline takes hours on a small machine; a
worker that starts on a changelog holding their final states recovers them in minutes. Each
user ``u<n>`` gets a history whose length is drawn from a real data set's sequences (Amazon
Beauty: 8.9 events on average), of random items of a catalogue, with event ids of a real
client's size (32 hex digits); the state is what :func:`streams.pipeline.state.apply_events`
makes of those events under the worker's limits, encoded as the worker's table encodes it
(faust's ``json`` codec) and sent to the changelog partition the user's events go to (the
Kafka client's murmur2 partitioner of the user key), so the worker's later writes for that user
replace it.

Tansu reports a partition's end offset as its last batch's first offset + 1: the bulk goes in
large batches, then each partition's last record alone in a batch of its own, so the end offset
a recovering worker reads is the true one.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from faust.serializers import codecs
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError
from kafka.partitioner.default import murmur2

from streams.contracts.events import Event
from streams.jobs.chaos import TABLE_CHANGELOG
from streams.pipeline.state import StateLimits, UserState, apply_events
from streams.settings import EVENTS_TOPIC, Settings

log = logging.getLogger(__name__)

# event types of a synthetic history, with their weights (orders fill ``ordered``)
TYPE_WEIGHTS = {"view": 0.3, "click": 0.6, "cart": 0.07, "order": 0.03}
DAY_MS = 24 * 3600 * 1000
HISTORY_DAYS = 90  # a history's events fall in the days before the seeding


@dataclass(frozen=True)
class SeedResult:
    users: int
    records: int
    value_bytes: int  # the encoded states' total size
    seconds: float


def history_lengths(sequences: Path) -> list[int]:
    """Events per user of a shared-format data set (``sequences.txt``: user, then items)."""
    out = [len(line.split()) - 1 for line in sequences.read_text().splitlines() if line.strip()]
    if not out:
        raise ValueError(f"no sequences in {sequences}")
    return out


def user_key(index: int) -> str:
    """The id (and message key) of synthetic user ``index``: what ``store_recovery.produce``
    sends events for."""
    return f"u{index}"


def partition_of(key: str, partitions: int) -> int:
    """The partition a keyed message goes to with the Kafka clients' default partitioner."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def synthetic_events(rng: random.Random, user: str, length: int, items: int, now_ms: int
                     ) -> list[Event]:
    """``length`` events of ``user`` in time order over the last ``HISTORY_DAYS`` days."""
    stamps = sorted(now_ms - rng.randrange(HISTORY_DAYS * DAY_MS) for _ in range(length))
    types = rng.choices(list(TYPE_WEIGHTS), weights=list(TYPE_WEIGHTS.values()), k=length)
    return [Event(f"{rng.getrandbits(128):032x}", user, rng.randrange(items), kind, ts)
            for kind, ts in zip(types, stamps, strict=True)]


def synthetic_state(rng: random.Random, index: int, lengths: list[int], items: int,
                    now_ms: int, settings: Settings) -> UserState:
    """User ``index``'s state after a history of a length drawn from ``lengths``, as the
    pipeline builds it (trimmed to the state limits; the next offset of its source partition
    recorded, at 0: any event of the later stream is new)."""
    key = user_key(index)
    state = UserState(key)
    events = synthetic_events(rng, key, rng.choice(lengths), items, now_ms)
    s = settings.state
    apply_events(state, events, StateLimits(s.seq_len, s.dedup_window, s.ordered_cap))
    part = partition_of(key, settings.kafka.topic_partitions)
    state.consumed = {f"{EVENTS_TOPIC}:{part}": 0}
    return state


def changelog_record(state: UserState) -> tuple[bytes, bytes]:
    """(key, value) bytes of a state's changelog record, as the worker's table writes them."""
    return codecs.dumps("json", str(state.user_id)), codecs.dumps("json", state.to_json())


def create_changelog(settings: Settings) -> str:
    """The table's changelog topic (faust would create it at the worker's start)."""
    topic = TABLE_CHANGELOG.format(app_id=settings.kafka.app_id)
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers,
                             client_id="sidstream-seed")
    try:
        admin.create_topics([NewTopic(topic, settings.kafka.topic_partitions,
                                      settings.kafka.replication_factor,
                                      topic_configs={"cleanup.policy": "compact"})])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()
    return topic


def records(users: int, lengths: list[int], items: int, settings: Settings, seed: int
            ) -> Iterator[tuple[int, bytes, bytes]]:
    """(partition, key, value) of every synthetic user's state, users in index order."""
    rng = random.Random(seed)
    now_ms = int(time.time() * 1000)
    for index in range(users):
        key, value = changelog_record(synthetic_state(rng, index, lengths, items, now_ms,
                                                      settings))
        yield partition_of(user_key(index), settings.kafka.topic_partitions), key, value


def seed_changelog(settings: Settings, users: int, lengths: list[int], items: int,
                   seed: int = 0) -> SeedResult:
    """Every synthetic user's state onto the changelog; each partition's last record is sent
    alone (Tansu's end offset)."""
    topic = create_changelog(settings)
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks=1,
                             linger_ms=20, batch_size=1 << 20, max_request_size=8 << 20,
                             enable_idempotence=False)
    start = time.monotonic()
    last: dict[int, tuple[bytes, bytes]] = {}
    n = size = 0
    try:
        for part, key, value in records(users, lengths, items, settings, seed):
            held = last.get(part)
            if held is not None:
                producer.send(topic, key=held[0], value=held[1], partition=part)
            last[part] = (key, value)
            n, size = n + 1, size + len(value)
            if n % 100_000 == 0:
                log.info("seeded %d of %d users", n, users)
        producer.flush()
        for part, (key, value) in last.items():  # alone in its batch: the true end offset
            producer.send(topic, key=key, value=value, partition=part)
        producer.flush()
    finally:
        producer.close()
    return SeedResult(users, n, size, round(time.monotonic() - start, 1))
