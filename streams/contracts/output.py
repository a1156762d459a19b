"""The Redis output contract: keys, the list payload and the candidates it carries.

Key ``sidstream:rec:{user_id}`` holds a JSON string (see README "Redis output"); catalogue items
are known under ``sidstream:item:{item_id}``. Recommendation APIs read these keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import orjson

from streams.contracts.events import Id


class Candidate(NamedTuple):  # a tuple: tens of thousands are made per micro-batch
    item_id: Id
    score: float
    source: str


REC_PREFIX = "sidstream:rec:"
ITEM_PREFIX = "sidstream:item:"


def rec_key(user_id: Id) -> str:
    return f"{REC_PREFIX}{user_id}"


def item_key(item_id: Id) -> str:
    return f"{ITEM_PREFIX}{item_id}"


def build_payload(user_id: Id, items: Sequence[Candidate], model_version: str,
                  updated_ms: int, event_ts: int) -> bytes:
    """The JSON document stored under :func:`rec_key` (UTF-8); item ids keep their producer
    type. orjson: the payloads were a tenth of the no-model worker's time with ``json``."""
    return orjson.dumps({
        "user_id": user_id,
        "items": [{"item_id": c.item_id, "score": c.score, "source": c.source} for c in items],
        "model_version": model_version,
        "updated_ms": updated_ms,
        "event_ts": event_ts,
    })


@dataclass(frozen=True, slots=True)
class RecList:
    """One user's ranked list, ready to write."""

    user_id: Id
    items: tuple[Candidate, ...]
    event_ts: int  # latest event behind this list (for freshness)
    model_version: str = ""  # models that made it (empty: the writer's default)
    # applied events this list answers (its newest one and those coalesced into it; 0: none,
    # e.g. a rewrite after redeliveries): counted once the list is in Redis
    events: int = 0
