"""``sidstream recs``: a list written in the payload contract, read back with titles."""

from __future__ import annotations

import json

import pytest
import redis

from streams.contracts.output import Candidate, build_payload, item_key, rec_key
from streams.jobs.recs import fetch_recs, format_recs, print_recs, titles
from streams.settings import Settings

pytestmark = pytest.mark.integration


def test_written_list_is_printed_with_titles(settings: Settings, rclient: redis.Redis,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    items = [Candidate(7, 0.9, "generative"), Candidate("x-8", 0.5, "covisit")]
    rclient.set(rec_key("recs-u1"), build_payload("recs-u1", items, "recall:v1", 2_000, 1_500))
    rclient.set(item_key(7), json.dumps({"item_id": 7, "title": "Red lipstick"}))
    payload = fetch_recs(rclient, "recs-u1")
    assert payload is not None and [i["item_id"] for i in payload["items"]] == [7, "x-8"]
    names = titles(rclient, [7, "x-8"])
    assert names == ["Red lipstick", ""]
    text = format_recs(payload, names)
    assert "recall:v1" in text and "freshness 500 ms" in text
    assert "Red lipstick" in text.splitlines()[1] and "x-8" in text.splitlines()[2]
    assert print_recs("recs-u1", settings=settings) == 0
    assert "Red lipstick" in capsys.readouterr().out


def test_a_user_without_a_list_is_reported_not_raised(settings: Settings,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert print_recs("recs-nobody", settings=settings) == 1
    assert "no list for user recs-nobody" in capsys.readouterr().out
