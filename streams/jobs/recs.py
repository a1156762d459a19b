"""``sidstream recs USER_ID``: a user's list from Redis, with catalogue titles where known."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from streams.contracts.output import item_key, rec_key
from streams.settings import Settings


def fetch_recs(client: redis.Redis, user_id: str) -> dict[str, Any] | None:
    raw = client.get(rec_key(user_id))
    return json.loads(raw) if raw else None


def titles(client: redis.Redis, item_ids: list[Any]) -> list[str]:
    if not item_ids:
        return []
    docs = client.mget([item_key(i) for i in item_ids])
    return [(json.loads(d).get("title") or "") if d else "" for d in docs]


def format_recs(payload: dict[str, Any], names: list[str], limit: int = 20) -> str:
    age_ms = int(time.time() * 1000) - payload["updated_ms"]
    lines = [f"user {payload['user_id']}: {len(payload['items'])} items, model "
             f"{payload['model_version']}, updated {age_ms / 1000:.1f}s ago "
             f"(freshness {payload['updated_ms'] - payload['event_ts']} ms)"]
    for rank, (item, name) in enumerate(zip(payload["items"][:limit], names, strict=False), 1):
        lines.append(f"{rank:>3}. {item['item_id']!s:>8}  {item['score']:.4f}  "
                     f"{item['source']:<10} {name[:70]}")
    return "\n".join(lines)


def print_recs(user_id: str, as_json: bool = False, settings: Settings | None = None) -> int:
    settings = settings or Settings.from_env()
    client = redis.Redis.from_url(settings.redis.redis_url, socket_timeout=5)
    payload = fetch_recs(client, user_id)
    if payload is None:
        print(f"no list for user {user_id} in {settings.redis.redis_url}")
        return 1
    if as_json:
        print(json.dumps(payload, indent=2))
        return 0
    names = titles(client, [it["item_id"] for it in payload["items"][:20]])
    print(format_recs(payload, names))
    return 0
