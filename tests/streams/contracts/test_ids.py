from __future__ import annotations

from streams.contracts.ids import model_item_id


def test_model_item_id() -> None:
    assert [model_item_id(x) for x in (7, "7", "007", "a7", -3, 0, True, "", "9" * 30)] == \
        [7, 7, 7, None, None, None, None, None, None]
