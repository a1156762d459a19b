"""A worker serving real (tiny, trained) models through the real broker and Redis."""

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
from streams.settings import ITEMS_TOPIC, Settings
from tests.fixtures.helpers import eventually
from tests.fixtures.stream_models import Served, copy_version, item_meta, start_served
from tests.fixtures.worker_io import now_ms, send

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(settings: Settings, trained_models: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("model-worker")
    models = Path(shutil.copytree(trained_models, root / "models"))
    redis_url = settings.redis.redis_url.rsplit("/", 1)[0] + "/1"  # its own lists: another DB
    env = {**settings.env(), "SIDSTREAM_APP_ID": "sidstream-models-test",
           "SIDSTREAM_REDIS_URL": redis_url, "SIDSTREAM_MODEL_DIR": str(models),
           "SIDSTREAM_DATA_DIR": str(root / "faust"), "SIDSTREAM_METRICS_PORT": str(free_port()),
           "SIDSTREAM_MODEL_POLL_S": "0.5", "SIDSTREAM_QUOTA_COVISIT": "0",
           "SIDSTREAM_QUOTA_POPULAR": "0",
           # 3 kept events: an ordered item leaves the sequence (where ``exclude_seen`` would
           # hide it too) and only the ordered-item rule keeps it out of the lists
           "SIDSTREAM_SEQ_LEN": "3"}
    served = start_served(env, root / "worker.log", models, redis_url)
    yield served
    served.worker.stop()


def user(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_click_gives_generative_items_ranked(served: Served, producer: KafkaProducer) -> None:
    u = user("gen")
    send(producer, u, 3)
    send(producer, u, 4)
    producer.flush()
    payload = eventually(lambda: (p := served.recs(u)) and len(p["items"]) > 0 and
                         p["items"][0]["item_id"] == 5 and p, timeout_s=60)
    assert payload, served.recs(u)
    assert {it["source"] for it in payload["items"]} == {"generative"}
    assert payload["model_version"].startswith("recall:") and "+ranker:" in \
        payload["model_version"]
    assert not {3, 4} & {it["item_id"] for it in payload["items"]}


def test_ordered_items_never_reappear(served: Served, producer: KafkaProducer) -> None:
    u = user("ord")
    send(producer, u, 5, "order")
    producer.flush()
    base = now_ms()
    # after 3, 4 the model's first item is 5 (test above); the last lists are computed from
    # kept sequences without 5 in them
    for k, item in enumerate((3, 4, 3, 4, 3, 4)):
        ts = base + k  # the list answering this event carries its ts: not an earlier list
        send(producer, u, item, ts=ts)
        producer.flush()
        p = eventually(lambda ts=ts: (q := served.recs(u)) and q["event_ts"] == ts and q,
                       timeout_s=60)
        assert p, (ts, served.recs(u))
        assert 5 not in {it["item_id"] for it in p["items"]}


def test_upserted_item_becomes_recallable(served: Served, producer: KafkaProducer) -> None:
    meta = item_meta(5)  # the text of item 5: same codes, a new collision slot
    doc = {"item_id": 88, "title": meta.title, "brand": meta.brand,
           "categories": [list(c) for c in meta.categories], "price": 12.5}
    producer.send(ITEMS_TOPIC, key=b"88", value=json.dumps(doc).encode())
    producer.flush()
    eventually(lambda: served.worker.metrics().total(
        "sidstream_catalogue_items_modelled_total") >= 1, timeout_s=30)

    def recalled() -> dict[str, Any] | None:
        u = user("new")
        send(producer, u, 3)
        send(producer, u, 4)
        producer.flush()
        p = eventually(lambda: (q := served.recs(u)) and len(q["items"]) > 1 and q,
                       timeout_s=30)
        return p if p and 88 in {it["item_id"] for it in p["items"]} else None

    payload = eventually(recalled, timeout_s=60, every_s=0.5)
    assert payload is not None
    assert next(it for it in payload["items"] if it["item_id"] == 88)["source"] == "generative"


def test_new_artifact_is_hot_swapped_and_a_corrupt_one_refused(
        served: Served, producer: KafkaProducer) -> None:
    new = copy_version(served.models, "recall", "29990101T000000-next")

    def version_of_new_list() -> str | None:
        u = user("swap")
        send(producer, u, 3)
        producer.flush()
        p = eventually(lambda: served.recs(u), timeout_s=30)
        return p["model_version"] if p and f"recall:{new}" in p["model_version"] else None

    assert eventually(version_of_new_list, timeout_s=60, every_s=0.5)
    snap = served.worker.metrics()
    assert snap.get("sidstream_model_info", kind="recall", version=new) == 1
    assert snap.get("sidstream_model_swaps_total", kind="recall") == 1

    ranker_before = snap.total("sidstream_model_refused_total")
    copy_version(served.models, "ranker", "29990101-000000-broken", corrupt=True)
    assert eventually(lambda: served.worker.metrics().get(
        "sidstream_model_refused_total", kind="ranker") >= 1, timeout_s=30)
    u = user("after")
    send(producer, u, 3)
    producer.flush()
    p = eventually(lambda: served.recs(u), timeout_s=30)
    assert p is not None and "broken" not in p["model_version"] and "+ranker:" in \
        p["model_version"] and served.worker.alive
    assert ranker_before == 0
