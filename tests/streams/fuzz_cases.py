"""Event payloads with a known verdict, built by mutating a valid event (the fuzz oracle)."""

from __future__ import annotations

import json
import random
import time
from typing import Any, NamedTuple

KINDS = ("valid", "unknown_item", "missing", "unknown_field", "ts_type", "bad_type",
         "past_ts", "future_ts", "random_bytes", "huge", "array", "negative_price", "bool_id",
         "empty")


class Case(NamedTuple):
    key: bytes
    value: bytes
    reason: str | None  # None: valid
    user: str


def make_case(rng: random.Random, kind: str, tag: str) -> Case:
    now = int(time.time() * 1000)
    user = f"fz-{tag}-{rng.randrange(10**9)}"
    ev: dict[str, Any] = {"event_id": f"{tag}-{rng.randrange(10**12)}", "user_id": user,
                          "item_id": rng.choice([rng.randrange(1, 50), f"it-{rng.randrange(50)}"]),
                          "type": rng.choice(["view", "click", "cart", "order"]),
                          "ts": now - rng.randrange(0, 10**6)}
    if rng.random() < 0.5:
        ev["price"] = round(rng.uniform(0, 500), 2)
    reason: str | None = None
    if kind == "unknown_item":
        ev["item_id"] = f"never-seen-{rng.randrange(10**9)}"
    elif kind == "missing":
        del ev[rng.choice(["event_id", "user_id", "item_id", "type", "ts"])]
        reason = "missing_field"
    elif kind == "unknown_field":
        ev[f"x{rng.randrange(100)}"] = rng.random()
        reason = "unknown_field"
    elif kind == "ts_type":
        ev["ts"] = rng.choice([str(now), now / 1.5, None, [now]])
        reason = "missing_field" if ev["ts"] is None else "wrong_type"
    elif kind == "bad_type":
        ev["type"] = rng.choice(["purchase", "CLICK", "", "view "])
        reason = "bad_event_type"
    elif kind == "past_ts":
        ev["ts"] = rng.choice([-1, 0, 1_000, 946_684_799_999])
        reason = "bad_timestamp"
    elif kind == "future_ts":
        ev["ts"] = now + rng.randrange(2, 10**6) * 3_600_000
        reason = "bad_timestamp"
    elif kind == "negative_price":
        ev["price"] = -rng.uniform(0.01, 100)
        reason = "bad_price"
    elif kind == "bool_id":
        ev["item_id"] = rng.choice([True, False])
        reason = "wrong_type"
    value = json.dumps(ev).encode()
    if kind == "random_bytes":
        value = b"\xff" + rng.randbytes(rng.randrange(0, 200))
        reason = "bad_json"
    elif kind == "huge":
        value = json.dumps({**ev, "item_id": "x" * rng.randrange(20_000, 200_000)}).encode()
        reason = "too_large"
    elif kind == "array":
        value = json.dumps([ev]).encode()
        reason = "not_object"
    elif kind == "empty":
        value, reason = b"", "empty"
    return Case(user.encode(), value, reason, user)
