import json

from streams.contracts.output import Candidate, build_payload, rec_key


def test_payload_contract() -> None:
    payload = json.loads(build_payload(7, [Candidate("a", 0.5, "covisit"), Candidate(3, 0.1,
                                                                                     "popular")],
                                       "v1", 1000, 900))
    assert payload == {"user_id": 7, "items": [{"item_id": "a", "score": 0.5,
                                                "source": "covisit"},
                                               {"item_id": 3, "score": 0.1,
                                                "source": "popular"}],
                       "model_version": "v1", "updated_ms": 1000, "event_ts": 900}
    assert rec_key(7) == "sidstream:rec:7"
