"""Event and item-upsert contracts, and their validation.

Every rejection carries a short machine-readable ``reason`` (a metric label and a DLQ header) and
a human-readable ``detail``. Validation never raises anything but :class:`Rejected`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

EVENT_TYPES = ("view", "click", "cart", "order")
EVENT_FIELDS = frozenset({"event_id", "user_id", "item_id", "type", "ts", "price"})
EVENT_REQUIRED = ("event_id", "user_id", "item_id", "type", "ts")
ITEM_FIELDS = frozenset({"item_id", "title", "brand", "categories", "price"})
MAX_TEXT_CHARS = 2000
INT64_MAX = 2**63 - 1

# Rejection reasons (label values of sidstream_events_invalid_total).
TOO_LARGE = "too_large"
EMPTY = "empty"
BAD_JSON = "bad_json"
NOT_OBJECT = "not_object"
MISSING_FIELD = "missing_field"
UNKNOWN_FIELD = "unknown_field"
WRONG_TYPE = "wrong_type"
BAD_ID = "bad_id"
BAD_EVENT_TYPE = "bad_event_type"
BAD_TIMESTAMP = "bad_timestamp"
BAD_PRICE = "bad_price"
KEY_MISMATCH = "key_mismatch"
REASONS = (TOO_LARGE, EMPTY, BAD_JSON, NOT_OBJECT, MISSING_FIELD, UNKNOWN_FIELD, WRONG_TYPE,
           BAD_ID, BAD_EVENT_TYPE, BAD_TIMESTAMP, BAD_PRICE, KEY_MISMATCH)

Id = str | int


class Rejected(Exception):
    """A payload that breaks the contract."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds applied by validation (from Settings)."""

    max_bytes: int = 16_384
    max_id_chars: int = 256
    min_ts_ms: int = 946_684_800_000
    future_skew_ms: int = 3_600_000


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    user_id: Id
    item_id: Id
    type: str
    ts: int  # epoch milliseconds
    price: float | None = None

    @property
    def user_key(self) -> str:
        """Partition/table key: the user id as text (also the Kafka message key)."""
        return str(self.user_id)


@dataclass(frozen=True, slots=True)
class ItemUpsert:
    item_id: Id
    title: str | None = None
    brand: str | None = None
    categories: tuple[tuple[str, ...], ...] = ()
    price: float | None = None


def parse_event(raw: bytes | None, key: bytes | None, now_ms: int, limits: Limits) -> Event:
    """Validate one ``sidstream-events`` message; raise :class:`Rejected` if it is invalid."""
    obj = _load_object(raw, limits.max_bytes)
    _check_fields(obj, EVENT_FIELDS, EVENT_REQUIRED)
    event_id = obj["event_id"]
    if not isinstance(event_id, str):
        raise Rejected(WRONG_TYPE, f"event_id must be a string, got {type(event_id).__name__}")
    if not event_id or len(event_id) > limits.max_id_chars:
        raise Rejected(BAD_ID, f"event_id must have 1..{limits.max_id_chars} characters")
    if not _utf8(event_id):  # a lone surrogate (JSON "\ud800"): the changelog can't carry it
        raise Rejected(BAD_ID, "event_id must be valid Unicode text (no lone surrogates)")
    user_id = _check_id("user_id", obj["user_id"], limits.max_id_chars)
    item_id = _check_id("item_id", obj["item_id"], limits.max_id_chars)
    etype = obj["type"]
    if not isinstance(etype, str):
        raise Rejected(WRONG_TYPE, f"type must be a string, got {type(etype).__name__}")
    if etype not in EVENT_TYPES:
        raise Rejected(BAD_EVENT_TYPE,
                       f"type {etype[:40]!r} is not one of {', '.join(EVENT_TYPES)}")
    ts = obj["ts"]
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise Rejected(WRONG_TYPE, f"ts must be integer epoch ms, got {type(ts).__name__}")
    if ts < limits.min_ts_ms or ts > now_ms + limits.future_skew_ms:
        raise Rejected(BAD_TIMESTAMP, f"ts {ts} is outside [{limits.min_ts_ms}, now + "
                                      f"{limits.future_skew_ms} ms] (epoch milliseconds?)")
    price = _check_price(obj.get("price"))
    if key is not None and key != str(user_id).encode():
        raise Rejected(KEY_MISMATCH, "message key must be the user id "
                                     f"({str(user_id)[:40]!r}), got {key[:40]!r}")
    return Event(event_id, user_id, item_id, etype, ts, price)


def parse_item(raw: bytes | None, limits: Limits) -> ItemUpsert:
    """Validate one ``sidstream-items`` catalogue upsert."""
    obj = _load_object(raw, limits.max_bytes)
    _check_fields(obj, ITEM_FIELDS, ("item_id",))
    item_id = _check_id("item_id", obj["item_id"], limits.max_id_chars)
    title = _check_text("title", obj.get("title"))
    brand = _check_text("brand", obj.get("brand"))
    return ItemUpsert(item_id, title, brand, _check_categories(obj.get("categories")),
                      _check_price(obj.get("price")))


def event_to_json(event: Event) -> bytes:
    """Serialise an event in the contract format (used by producers such as the replay)."""
    obj: dict[str, Any] = {"event_id": event.event_id, "user_id": event.user_id,
                           "item_id": event.item_id, "type": event.type, "ts": event.ts}
    if event.price is not None:
        obj["price"] = event.price
    return json.dumps(obj, separators=(",", ":")).encode()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _load_object(raw: bytes | None, max_bytes: int) -> dict[str, Any]:
    if raw is None or len(raw) == 0:
        raise Rejected(EMPTY, "empty message value")
    if len(raw) > max_bytes:
        raise Rejected(TOO_LARGE, f"{len(raw)} bytes > limit {max_bytes}")
    try:
        obj = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Rejected(BAD_JSON, str(exc)[:200]) from None
    if not isinstance(obj, dict):
        raise Rejected(NOT_OBJECT, f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _check_fields(obj: dict[str, Any], allowed: frozenset[str], required: tuple[str, ...]) -> None:
    missing = [f for f in required if f not in obj or obj[f] is None]
    if missing:
        raise Rejected(MISSING_FIELD, f"missing {', '.join(missing)}")
    unknown = sorted(k for k in obj if k not in allowed)
    if unknown:
        raise Rejected(UNKNOWN_FIELD, f"unknown field(s) {', '.join(k[:40] for k in unknown[:5])}")


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _check_id(name: str, value: Any, max_chars: int) -> Id:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Rejected(WRONG_TYPE, f"{name} must be a string or an integer, "
                                   f"got {type(value).__name__}")
    if isinstance(value, int):
        if not -INT64_MAX <= value <= INT64_MAX:
            raise Rejected(BAD_ID, f"{name} is outside the 64-bit range")
    elif not value or len(value) > max_chars or not value.isprintable():
        raise Rejected(BAD_ID, f"{name} must have 1..{max_chars} printable characters")
    return value


def _check_price(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejected(WRONG_TYPE, f"price must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or value > 1e9:
        raise Rejected(BAD_PRICE, f"price {value!r} must be finite and in [0, 1e9]")
    return float(value)


def _check_text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Rejected(WRONG_TYPE, f"{name} must be a string, got {type(value).__name__}")
    return value[:MAX_TEXT_CHARS]


def _check_categories(value: Any) -> tuple[tuple[str, ...], ...]:
    """Accept ``["a", "b"]`` (one path) or ``[["a", "b"], ["c"]]`` (several paths)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise Rejected(WRONG_TYPE, "categories must be a list")
    if all(isinstance(c, str) for c in value):
        return (tuple(c[:200] for c in value),) if value else ()
    paths = []
    for path in value:
        if not isinstance(path, list) or not all(isinstance(c, str) for c in path):
            raise Rejected(WRONG_TYPE, "categories must be a list of strings or of string lists")
        paths.append(tuple(c[:200] for c in path))
    return tuple(paths)
