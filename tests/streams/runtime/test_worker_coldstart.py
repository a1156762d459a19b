"""Cold start through the real broker and Redis: profiles on sidstream-users, a worker serving a
(tiny, trained) profile-conditioned recall model."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from infra.embedded import free_port
from streams.jobs.chaos import read_states
from streams.settings import USERS_TOPIC, Settings
from tests.fixtures.helpers import dlq_reasons, eventually
from tests.fixtures.stream_models import Served, start_served
from tests.fixtures.worker_io import send

pytestmark = pytest.mark.integration

APP_ID = "sidstream-coldstart-test"


@pytest.fixture(scope="module")
def served(settings: Settings, profile_models: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("coldstart-worker")
    models = Path(shutil.copytree(profile_models, root / "models"))
    redis_url = settings.redis.redis_url.rsplit("/", 1)[0] + "/2"  # its own lists: another DB
    own = settings.with_values(app_id=APP_ID, redis_url=redis_url, model_dir=models,
                              data_dir=root / "faust", metrics_port=free_port())
    env = {**own.env(), "SIDSTREAM_QUOTA_COVISIT": "0", "SIDSTREAM_QUOTA_POPULAR": "0"}
    served = start_served(env, root / "worker.log", models, redis_url, own)
    yield served
    served.worker.stop()


def send_profile(producer: KafkaProducer, user: str, value: bytes | dict[str, Any]) -> bytes:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    producer.send(USERS_TOPIC, key=user.encode(), value=raw)
    return raw


def test_profile_alone_then_first_events_give_cold_start_lists(served: Served,
                                                               producer: KafkaProducer) -> None:
    u = f"cold-{uuid.uuid4().hex[:8]}"
    send_profile(producer, u, {"user_id": u, "age": 27, "gender": "F",
                               "occupation": "perfume fan", "region": "9"})
    producer.flush()
    first = eventually(lambda: served.recs(u), timeout_s=60, what="list from a profile alone")
    # popular items fill the list when earlier tests' events on the shared topic made any
    sources = {it["source"] for it in first["items"]}
    assert first["items"][0]["source"] == "coldstart" and sources <= {"coldstart", "popular"}
    assert first["model_version"].startswith("recall:") and first["event_ts"] == 0

    send(producer, u, "3")
    producer.flush()
    after = eventually(lambda: (p := served.recs(u)) and p["event_ts"] > 0 and p, timeout_s=60)
    assert "coldstart" in {it["source"] for it in after["items"]}
    assert "3" not in {it["item_id"] for it in after["items"]}  # seen: excluded
    # cold-start items come in the user's id type (popular fill: whatever other users sent)
    assert all(isinstance(it["item_id"], str) for it in after["items"]
               if it["source"] == "coldstart")

    state = eventually(lambda: (s := read_states(served.settings).get(u)) and s["n"] == 1 and s,
                       timeout_s=30, what="state in the changelog")
    assert state["profile"] == {"age": 27, "gender": "F", "occupation": "perfume fan",
                                "region": "9"}
    assert served.worker.metrics().get("sidstream_profiles_total") >= 1


def test_invalid_profiles_go_to_the_dlq_with_reasons(served: Served, settings: Settings,
                                                     producer: KafkaProducer) -> None:
    marker = uuid.uuid4().hex
    bad = {
        send_profile(producer, "p1", {"user_id": "p1", "age": 300, "note": marker}):
            "unknown_field",
        send_profile(producer, "p2", {"user_id": "p2", "age": 300, "region": marker}):
            "bad_profile",
        send_profile(producer, "p3", b"{broken " + marker.encode()): "bad_json",
        send_profile(producer, "p4", {"user_id": "p5", "region": marker}): "key_mismatch",
    }
    producer.flush()
    assert dlq_reasons(settings, bad) == bad
    assert served.worker.alive
    assert served.worker.metrics().get("sidstream_events_invalid_total",
                                       reason="bad_profile") >= 1
