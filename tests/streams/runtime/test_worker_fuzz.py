"""Property-based fuzz of event payloads: pure validation, then through the real worker."""

from __future__ import annotations

import json
import random
import time
import uuid

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer

from infra.worker_process import WorkerProcess
from streams.contracts.events import Limits, Rejected, parse_event
from streams.settings import EVENTS_TOPIC, Settings
from tests.fixtures.fuzz_cases import KINDS, make_case
from tests.fixtures.helpers import dlq_reasons, eventually


@given(st.sampled_from(KINDS), st.randoms(use_true_random=False))
@settings(max_examples=400, deadline=None)
def test_every_mutation_gets_its_verdict(kind: str, rng: random.Random) -> None:
    case = make_case(rng, kind, "p")
    now = int(time.time() * 1000)
    if case.reason is None:
        assert parse_event(case.value, case.key, now, Limits()).user_id == case.user
    else:
        with pytest.raises(Rejected) as info:
            parse_event(case.value, case.key, now, Limits())
        assert info.value.reason == case.reason


@pytest.mark.integration
def test_fuzzed_stream_valid_through_invalid_to_dlq(worker: WorkerProcess,
                                                     producer: KafkaProducer,
                                                     settings: Settings,
                                                     rclient: redis.Redis) -> None:
    rng = random.Random(2026)
    tag = uuid.uuid4().hex[:6]
    cases = [make_case(rng, rng.choice(KINDS), tag) for _ in range(300)]
    before = worker.metrics()
    for case in cases:
        producer.send(EVENTS_TOPIC, key=case.key, value=case.value)
    producer.flush()
    invalid = {c.value: c.reason for c in cases if c.reason}
    valid_users = {c.user for c in cases if c.reason is None}
    found = dlq_reasons(settings, invalid)
    assert found == invalid  # every invalid payload, with its reason, original bytes
    eventually(lambda: all(rclient.exists(f"sidstream:rec:{u}") for u in valid_users),
               timeout_s=60, what="a list for every user with a valid event")
    assert worker.alive
    after = worker.metrics()
    n_unknown = sum(1 for c in cases if c.reason is None and b"never-seen" in c.value)
    assert (after.get("sidstream_events_unknown_item_total")
            - before.get("sidstream_events_unknown_item_total")) >= n_unknown > 0
    assert json.loads(rclient.get(f"sidstream:rec:{next(iter(valid_users))}") or "{}")["items"] \
        is not None
