"""Profile vocabulary, field encoding, context buckets and profile dropout."""

from __future__ import annotations

import datetime as dt

import numpy as np

from models.data.profile import (
    FIELDS,
    Profile,
    ProfileVocab,
    age_band,
    context_codes,
    drop_fields,
    movielens_profile,
)


def test_age_bands_follow_the_movielens_1m_cuts() -> None:
    assert [age_band(a) for a in (7, 17, 18, 24, 25, 34, 35, 44, 45, 49, 50, 55, 56, 90)] == \
        [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]


def test_context_codes_are_utc_hour_buckets_and_weekdays() -> None:
    ts = int(dt.datetime(2026, 11, 23, 13, 30, tzinfo=dt.UTC).timestamp() * 1000)  # a Monday
    assert context_codes(ts) == (1 + 13 // 4, 1)
    assert context_codes(None) == (0, 0)
    assert context_codes(0) == (0, 0)


def test_vocab_codes_known_values_and_maps_the_rest_to_unknown() -> None:
    vocab = ProfileVocab.build([Profile(occupation="Engineer", region="9"),
                                Profile(occupation="artist", membership="gold"), Profile()])
    assert vocab.occupation == ("artist", "engineer") and vocab.region == ("9",)
    assert vocab.sizes == (8, 4, 3, 2, 2, 7, 8) and len(vocab.sizes) == len(FIELDS)
    codes = vocab.encode(Profile(age=30, gender="F", occupation="ENGINEER", region="9",
                                 membership="gold"), None)
    assert codes.tolist() == [3, 1, 2, 1, 1, 0, 0]
    unknown = vocab.encode(Profile(gender="Q", occupation="pilot", region="0"), None)
    assert unknown.tolist() == [0] * len(FIELDS)
    assert vocab.encode(None).tolist() == [0] * len(FIELDS)
    assert (codes < np.array(vocab.sizes)).all()
    assert ProfileVocab.from_json(vocab.to_json()) == vocab


def test_profile_json_round_trip_and_movielens_rows() -> None:
    p = Profile(age=24, gender="M", occupation="technician")
    assert p.to_json() == {"age": 24, "gender": "M", "occupation": "technician"}
    assert Profile.from_json(p.to_json()) == p
    ml = movielens_profile({"age": 24, "gender": "M", "occupation": "technician",
                            "zip_code": "85711"})
    assert ml == Profile(age=24, gender="M", occupation="technician", region="8")


def test_drop_fields_rates() -> None:
    rng = np.random.default_rng(0)
    codes = np.ones((20_000, 7), np.int64)
    dropped = drop_fields(codes, 0.2, 0.1, rng)
    assert abs((dropped == 0).all(1).mean() - 0.1) < 0.01  # whole profiles (+ 0.2^7)
    assert abs((dropped == 0).mean() - (0.1 + 0.9 * 0.2)) < 0.01
    assert (drop_fields(codes, 0.0, 0.0, rng) == codes).all()
