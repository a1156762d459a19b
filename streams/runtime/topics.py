"""Topic administration with a plain Kafka client: source topics exist before workers start."""

from __future__ import annotations

import logging
import time

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from streams.settings import DLQ_TOPIC, EVENTS_TOPIC, ITEMS_TOPIC, USERS_TOPIC, Settings

log = logging.getLogger(__name__)

SOURCE_TOPICS = (EVENTS_TOPIC, ITEMS_TOPIC, DLQ_TOPIC, USERS_TOPIC)


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> None:
    """Create the contract topics with ``topic_partitions`` partitions if they are missing."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            # the bootstrap wait is bounded too: by default kafka-python waits 30 s per attempt
            left_ms = max(int((deadline - time.monotonic()) * 1000), 1000)
            admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers,
                                     client_id="sidstream-admin", request_timeout_ms=10_000,
                                     bootstrap_timeout_ms=left_ms)
            break
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise ConnectionError(f"broker {settings.kafka.broker} unreachable: {exc}") from exc
            time.sleep(0.5)
    try:
        existing = set(admin.list_topics())
        for name in SOURCE_TOPICS:
            if name in existing:
                continue
            try:
                admin.create_topics([NewTopic(name, settings.kafka.topic_partitions,
                                              settings.kafka.replication_factor)])
                log.info("created topic %s (%d partitions)", name, settings.kafka.topic_partitions)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
