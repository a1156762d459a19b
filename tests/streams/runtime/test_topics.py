"""The contract topics exist with the configured partitions, and creating them twice is fine."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer

from infra.embedded import free_port
from streams.runtime.topics import SOURCE_TOPICS, ensure_topics
from streams.settings import Settings

pytestmark = pytest.mark.integration


def test_contract_topics_have_the_configured_partitions(settings: Settings) -> None:
    ensure_topics(settings)  # the session fixture created them: a second call changes nothing
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    try:
        for topic in SOURCE_TOPICS:
            parts = consumer.partitions_for_topic(topic)
            assert parts is not None and len(parts) == settings.kafka.topic_partitions, topic
    finally:
        consumer.close()


def test_an_unreachable_broker_fails_within_the_timeout() -> None:
    settings = Settings.from_env({}, broker=f"kafka://127.0.0.1:{free_port()}")
    start = time.monotonic()
    with pytest.raises(ConnectionError, match="unreachable"):
        ensure_topics(settings, timeout_s=1.0)
    assert time.monotonic() - start < 10  # kafka-python alone would wait 30 s to bootstrap
