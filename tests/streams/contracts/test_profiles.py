"""The sidstream-users contract and profiles kept in the user state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from models.data.profile import Profile
from streams.channels.covisit import CoVisitation
from streams.channels.popularity import DecayedPopularity
from streams.contracts.events import Limits, Rejected
from streams.contracts.profiles import BAD_PROFILE, parse_profile
from streams.metrics import Metrics
from streams.pipeline.batch import Pipeline, Record
from streams.runtime.model_watcher import ModelWatcher
from streams.settings import EVENTS_TOPIC, USERS_TOPIC, Settings

NOW_S = 1_795_000_000.0


LIMITS = Limits()


def prof(obj: Any, key: bytes | None = None, partition: int = 0, offset: int = 0) -> Record:
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return Record(key, raw, USERS_TOPIC, partition, offset)


def event(user: Any, item: Any, n: int = 0, etype: str = "click") -> Record:
    value = json.dumps({"event_id": f"{user}-{item}-{n}", "user_id": user, "item_id": item,
                        "type": etype, "ts": int(NOW_S * 1000) - 10})
    return Record(str(user).encode(), value.encode(), EVENTS_TOPIC, 0, n)


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


def pipeline(model_dir: Path | None = None, **over: Any) -> Pipeline:
    settings = Settings.from_env({}, model_dir=model_dir or Path("/nonexistent"), **over)
    pipe = Pipeline(settings, CoVisitation(), DecayedPopularity(), Metrics(),
                    clock=lambda: NOW_S)
    if model_dir is not None:
        pipe.models = ModelWatcher(settings, pipe.metrics).load_initial()
    return pipe


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
