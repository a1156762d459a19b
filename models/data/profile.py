"""User profiles and request context as a small token vocabulary for the generative model.

A profile-conditioned SIDGPT reads ``[f_1 .. f_F, BOS, s_1^0, ...]``: one token per field, each
field with a slice of its own in the token vocabulary (``GenConfig.profile_sizes``), code 0 of
every field meaning "unknown" (missing in the profile, dropped in training, or a value the
training data never had). Fields:

- ``age``: bands <18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+ (MovieLens-1M's bands);
- ``gender``: F, M, X;
- ``occupation``, ``region``, ``membership``: the values seen in training (open vocabularies,
  stored in the artifact); MovieLens' region is the first digit of the ZIP code;
- ``hour`` (4-hour buckets, UTC) and ``weekday`` of the request time: the context.

Nothing here imports torch: the stream workers parse profiles with it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

AGE_CUTS = (18, 25, 35, 45, 50, 56)  # band = number of cuts <= age: 0..6
GENDERS = ("F", "M", "X")
HOUR_BUCKET_H = 4
FIELDS = ("age", "gender", "occupation", "region", "membership", "hour", "weekday")
CONTEXT_FIELDS = ("hour", "weekday")  # the last fields: the request's, not the user's
OPEN_FIELDS = ("occupation", "region", "membership")
MAX_TEXT = 64  # longest occupation / region / membership value


@dataclass(frozen=True, slots=True)
class Profile:
    """What a user told us about themselves; every field optional."""

    age: int | None = None
    gender: str | None = None
    occupation: str | None = None
    region: str | None = None
    membership: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Profile:
        return cls(**{k: obj[k] for k in ("age", "gender", "occupation", "region", "membership")
                      if obj.get(k) is not None})


def movielens_profile(row: Mapping[str, Any]) -> Profile:
    """A MovieLens-100k user row (``models.data.dataset.load_movielens``) as a :class:`Profile`."""
    zip_code = str(row.get("zip_code") or "")
    return Profile(age=int(row["age"]) if row.get("age") is not None else None,
                   gender=row.get("gender") or None,
                   occupation=(row.get("occupation") or None),
                   region=zip_code[:1] or None)


def age_band(age: int) -> int:
    """0-based band of an age (see ``AGE_CUTS``)."""
    return sum(age >= c for c in AGE_CUTS)


def context_codes(ts_ms: int | None) -> tuple[int, int]:
    """(hour bucket + 1, weekday + 1) of an epoch-ms time, (0, 0) when unknown."""
    if ts_ms is None or ts_ms <= 0:
        return 0, 0
    t = dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC)
    return 1 + t.hour // HOUR_BUCKET_H, 1 + t.weekday()


@dataclass(frozen=True)
class ProfileVocab:
    """Field values -> codes (0 = unknown). Open fields keep the values seen in training."""

    occupation: tuple[str, ...] = ()
    region: tuple[str, ...] = ()
    membership: tuple[str, ...] = ()

    @property
    def sizes(self) -> tuple[int, ...]:
        """Codes per field (unknown included), in ``FIELDS`` order."""
        return (1 + len(AGE_CUTS) + 1, 1 + len(GENDERS), 1 + len(self.occupation),
                1 + len(self.region), 1 + len(self.membership), 1 + 24 // HOUR_BUCKET_H, 1 + 7)

    @classmethod
    def build(cls, profiles: Iterable[Profile]) -> ProfileVocab:
        seen: dict[str, set[str]] = {f: set() for f in OPEN_FIELDS}
        for p in profiles:
            for f in OPEN_FIELDS:
                v = getattr(p, f)
                if v:
                    seen[f].add(str(v).lower())
        return cls(**{f: tuple(sorted(seen[f])) for f in OPEN_FIELDS})

    def to_json(self) -> dict[str, list[str]]:
        return {f: list(getattr(self, f)) for f in OPEN_FIELDS}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ProfileVocab:
        return cls(**{f: tuple(str(v) for v in obj.get(f, ())) for f in OPEN_FIELDS})

    def encode(self, profile: Profile | None, ts_ms: int | None = None) -> np.ndarray:
        """Field codes [F] (int64, 0 = unknown) of a profile and the request time."""
        p = profile or Profile()
        age = 0 if p.age is None else 1 + age_band(p.age)
        gender = GENDERS.index(p.gender) + 1 if p.gender in GENDERS else 0
        hour, weekday = context_codes(ts_ms)
        return np.array([age, gender, _code(self.occupation, p.occupation),
                         _code(self.region, p.region), _code(self.membership, p.membership),
                         hour, weekday], np.int64)


def _code(values: tuple[str, ...], value: str | None) -> int:
    if not value:
        return 0
    v = str(value).lower()
    i = int(np.searchsorted(values, v)) if values else 0
    return i + 1 if i < len(values) and values[i] == v else 0


def drop_fields(codes: np.ndarray, p_field: float, p_all: float, rng: np.random.Generator
                ) -> np.ndarray:
    """Training-time profile dropout on codes [N, F]: each field becomes unknown with
    probability ``p_field``, a whole row with ``p_all`` (users without any profile)."""
    keep = rng.random(codes.shape) >= p_field
    keep &= (rng.random((codes.shape[0], 1)) >= p_all)
    return np.where(keep, codes, 0)
