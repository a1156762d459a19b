"""Id conversions between the stream's item ids and the models' integer ids."""

from __future__ import annotations

from streams.contracts.events import Id


def model_item_id(item: Id) -> int | None:
    """The models' integer id of a stream item id (ints and decimal strings), else None."""
    if isinstance(item, bool):
        return None
    if isinstance(item, int):
        return item if item > 0 else None
    if isinstance(item, str) and item.isdecimal() and len(item) < 19:
        value = int(item)
        return value if value > 0 else None
    return None


def stream_id(item: int, like: Id | None) -> Id:
    """A model item id in the type the user's own events use (JSON ints or strings)."""
    return str(item) if isinstance(like, str) else item
