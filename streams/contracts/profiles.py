"""The ``sidstream-users`` contract (user profiles) and its application to user state.

A profile message is keyed by the user id (like events, so a user's profile and events share a
partition and a worker) and holds a JSON object::

    {"user_id": "str|int", "age": 34, "gender": "F", "occupation": "engineer",
     "region": "9", "membership": "gold"}

All fields but ``user_id`` are optional; a message replaces the user's whole profile. Invalid
messages are rejected with the event reasons (``empty``, ``too_large``, ``bad_json``,
``not_object``, ``missing_field``, ``unknown_field``, ``wrong_type``, ``bad_id``,
``key_mismatch``) or ``bad_profile`` (age outside 0..120, gender not F/M/X, empty or over-long
text), and go to the DLQ like invalid events. The events agent consumes this topic too (one
writer of the user state, no lost updates): a valid profile is stored in the user's state
(``UserState.profile``) and the user's list is recomputed, so a user who signs up gets a
cold-start list before their first event (``streams/pipeline/batch.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.data.profile import GENDERS, MAX_TEXT, Profile
from streams.contracts.events import (
    KEY_MISMATCH,
    WRONG_TYPE,
    Id,
    Limits,
    Rejected,
    _check_fields,
    _check_id,
    _load_object,
)

BAD_PROFILE = "bad_profile"
PROFILE_FIELDS = frozenset({"user_id", "age", "gender", "occupation", "region", "membership"})
MAX_AGE = 120


@dataclass(frozen=True, slots=True)
class ProfileUpdate:
    user_id: Id
    profile: Profile

    @property
    def user_key(self) -> str:
        return str(self.user_id)


def parse_profile(raw: bytes | None, key: bytes | None, limits: Limits) -> ProfileUpdate:
    """Validate one ``sidstream-users`` message; raise :class:`Rejected` if it is invalid."""
    obj = _load_object(raw, limits.max_bytes)
    _check_fields(obj, PROFILE_FIELDS, ("user_id",))
    user_id = _check_id("user_id", obj["user_id"], limits.max_id_chars)
    age = obj.get("age")
    if age is not None:
        if isinstance(age, bool) or not isinstance(age, int):
            raise Rejected(WRONG_TYPE, f"age must be an integer, got {type(age).__name__}")
        if not 0 <= age <= MAX_AGE:
            raise Rejected(BAD_PROFILE, f"age {age} is outside 0..{MAX_AGE}")
    gender = _text(obj, "gender")
    if gender is not None and gender not in GENDERS:
        raise Rejected(BAD_PROFILE, f"gender {gender[:20]!r} is not one of {', '.join(GENDERS)}")
    profile = Profile(age, gender, _text(obj, "occupation"), _text(obj, "region"),
                      _text(obj, "membership"))
    if key is not None and key != str(user_id).encode():
        raise Rejected(KEY_MISMATCH, "message key must be the user id "
                                     f"({str(user_id)[:40]!r}), got {key[:40]!r}")
    return ProfileUpdate(user_id, profile)


def _text(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Rejected(WRONG_TYPE, f"{name} must be a string, got {type(value).__name__}")
    if not value or len(value) > MAX_TEXT or not value.isprintable():
        raise Rejected(BAD_PROFILE, f"{name} must have 1..{MAX_TEXT} printable characters")
    return value
