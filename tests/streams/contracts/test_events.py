import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.contracts import events as ev
from streams.contracts.events import Limits, Rejected, parse_event, parse_item

NOW = 1_795_000_000_000
LIMITS = Limits()


def raw(**over: object) -> bytes:
    obj = {"event_id": "e1", "user_id": 7, "item_id": "sku-1", "type": "click", "ts": NOW}
    obj.update(over)
    return json.dumps({k: v for k, v in obj.items() if v is not ...}).encode()


def reason(value: bytes | None, key: bytes | None = b"7") -> str:
    with pytest.raises(Rejected) as info:
        parse_event(value, key, NOW, LIMITS)
    return info.value.reason


def test_valid_event_keeps_id_types() -> None:
    e = parse_event(raw(price=9.5), b"7", NOW, LIMITS)
    assert (e.user_id, e.item_id, e.type, e.ts, e.price) == (7, "sku-1", "click", NOW, 9.5)
    assert e.user_key == "7"
    assert parse_event(raw(user_id="u-7"), b"u-7", NOW, LIMITS).user_id == "u-7"


@pytest.mark.parametrize(("value", "expected"), [
    (b"", ev.EMPTY),
    (None, ev.EMPTY),
    (b"{not json", ev.BAD_JSON),
    (b"\xff\xfe", ev.BAD_JSON),
    (b'{"ts": NaN}', ev.BAD_JSON),
    (b"[1, 2]", ev.NOT_OBJECT),
    (raw(event_id=...), ev.MISSING_FIELD),
    (raw(ts=None), ev.MISSING_FIELD),
    (raw(extra=1), ev.UNKNOWN_FIELD),
    (raw(event_id=5), ev.WRONG_TYPE),
    (raw(event_id=""), ev.BAD_ID),
    (raw(event_id="e\ud800"), ev.BAD_ID),  # a lone surrogate, escaped in the JSON
    (raw(user_id=True), ev.WRONG_TYPE),
    (raw(item_id=1.5), ev.WRONG_TYPE),
    (raw(item_id="a\nb"), ev.BAD_ID),
    (raw(type="purchase"), ev.BAD_EVENT_TYPE),
    (raw(type=3), ev.WRONG_TYPE),
    (raw(ts="1700000000000"), ev.WRONG_TYPE),
    (raw(ts=1.0e12), ev.WRONG_TYPE),
    (raw(ts=1_700_000_000), ev.BAD_TIMESTAMP),  # seconds, not milliseconds
    (raw(ts=NOW + 86_400_000), ev.BAD_TIMESTAMP),
    (raw(ts=-5), ev.BAD_TIMESTAMP),
    (raw(price="9"), ev.WRONG_TYPE),
    (raw(price=-1), ev.BAD_PRICE),
    (b"x" * (LIMITS.max_bytes + 1), ev.TOO_LARGE),
])
def test_rejections_have_reasons(value: bytes | None, expected: str) -> None:
    assert reason(value) == expected


def test_key_must_match_user() -> None:
    assert reason(raw(), key=b"8") == ev.KEY_MISMATCH
    assert parse_event(raw(), None, NOW, LIMITS).user_id == 7  # unkeyed: accepted


def test_event_json_round_trip() -> None:
    e = parse_event(raw(price=3), b"7", NOW, LIMITS)
    assert parse_event(ev.event_to_json(e), b"7", NOW, LIMITS) == e


@given(st.binary(max_size=300))
def test_random_bytes_never_raise_anything_else(data: bytes) -> None:
    try:
        parse_event(data, b"7", NOW, LIMITS)
    except Rejected as exc:
        assert exc.reason in ev.REASONS


def test_item_upsert() -> None:
    item = parse_item(b'{"item_id": 3, "title": "T", "categories": ["a", "b"], "price": 2}',
                      LIMITS)
    assert item.categories == (("a", "b"),) and item.price == 2.0 and item.item_id == 3
    paths = parse_item(b'{"item_id": "x", "categories": [["a"], ["b", "c"]]}', LIMITS)
    assert paths.categories == (("a",), ("b", "c"))
    with pytest.raises(Rejected) as info:
        parse_item(b'{"title": "no id"}', LIMITS)
    assert info.value.reason == ev.MISSING_FIELD
    with pytest.raises(Rejected) as info:
        parse_item(b'{"item_id": 1, "categories": [1]}', LIMITS)
    assert info.value.reason == ev.WRONG_TYPE


@pytest.mark.parametrize("event_id", ["\ud800", "x\udfff", "\U0001f600", "tab\t", "é"])
def test_accepted_event_ids_can_be_written_to_the_changelog(event_id: str) -> None:
    """The state keeps event ids (dedup window) and faust writes it with orjson, which refuses
    lone surrogates: an id that passes validation must serialise, or the worker would fail
    on the changelog instead of sending the event to the dead-letter topic."""
    try:
        e = parse_event(raw(event_id=event_id), b"7", NOW, LIMITS)
    except Rejected:
        return
    orjson.dumps({"ids": [e.event_id]})
