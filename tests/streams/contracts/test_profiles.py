"""The sidstream-users contract and profiles kept in the user state."""

from __future__ import annotations

import json
from typing import Any

import pytest

from models.data.profile import Profile
from streams.contracts.events import Limits, Rejected
from streams.contracts.profiles import BAD_PROFILE, parse_profile
from tests.fixtures.profile_pipelines import event, pipeline, prof

LIMITS = Limits()


def test_valid_profiles_parse() -> None:
    full = {"user_id": "u1", "age": 34, "gender": "F", "occupation": "engineer", "region": "9",
            "membership": "gold"}
    upd = parse_profile(json.dumps(full).encode(), b"u1", LIMITS)
    assert upd.user_id == "u1" and upd.profile == Profile(34, "F", "engineer", "9", "gold")
    assert parse_profile(b'{"user_id": 7}', None, LIMITS).profile == Profile()
    assert parse_profile(b'{"user_id": 7, "age": null}', b"7", LIMITS).user_key == "7"


@pytest.mark.parametrize(("raw", "key", "reason"), [
    (b"", None, "empty"),
    (b"{nope", None, "bad_json"),
    (b"[1]", None, "not_object"),
    (b'{"age": 3}', None, "missing_field"),
    (b'{"user_id": 1, "income": 3}', None, "unknown_field"),
    (b'{"user_id": 1, "age": "30"}', None, "wrong_type"),
    (b'{"user_id": 1, "age": true}', None, "wrong_type"),
    (b'{"user_id": 1, "gender": 1}', None, "wrong_type"),
    (b'{"user_id": 1, "age": 200}', None, BAD_PROFILE),
    (b'{"user_id": 1, "age": -1}', None, BAD_PROFILE),
    (b'{"user_id": 1, "gender": "female"}', None, BAD_PROFILE),
    (b'{"user_id": 1, "occupation": ""}', None, BAD_PROFILE),
    (b'{"user_id": 1, "region": "' + b"x" * 65 + b'"}', None, BAD_PROFILE),
    (b'{"user_id": ""}', None, "bad_id"),
    (b'{"user_id": 1}', b"2", "key_mismatch"),
    (b'{"user_id": 1, "pad": "' + b"x" * 20_000 + b'"}', None, "too_large"),
])
def test_invalid_profiles_are_rejected_with_reasons(raw: bytes, key: bytes | None,
                                                    reason: str) -> None:
    with pytest.raises(Rejected) as exc:
        parse_profile(raw, key, LIMITS)
    assert exc.value.reason == reason and exc.value.detail


def test_profiles_are_stored_in_state_and_invalid_ones_rejected() -> None:
    pipe = pipeline()
    table: dict[str, Any] = {}
    out = pipe.process([event("a", 1), event("a", 2, n=1)], table.get)
    table.update({k: v for k, (_, v) in out.states.items()})
    out = pipe.process([prof({"user_id": "a", "age": 41}, b"a", partition=2, offset=5),
                        prof({"user_id": "new", "gender": "X"}, b"new"),
                        prof(b'{"user_id": "b", "age": 999}', b"b", offset=9)], table.get)
    assert [(r.reason, r.record.offset) for r in out.rejects] == [(BAD_PROFILE, 9)]
    part, a = out.states["a"]
    assert part == 2 and a["profile"] == {"age": 41} and a["n"] == 2  # events kept
    assert out.states["new"][1]["profile"] == {"gender": "X"} and out.states["new"][1]["n"] == 0
    assert {r.user_id for r in out.lists} == {"a", "new"}  # a profile recomputes the list
    assert pipe.metrics.profiles._value.get() == 2
