"""A data set's interactions in replay order, and the data set as it stood before a window.

The order is the one the stream sees when the set is replayed (``sidstream replay``): real
timestamps where the set has them (MovieLens), else each user's events spread over a common span
(seeded, each user's order kept). ``before_window`` cuts the last ``n`` interactions of that order
from every user, so a model trained on it has never seen the window a promotion gate judges it on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from models.data.dataset import SeqDataset

ORDER_MIN_RATING = 4.0  # MovieLens: a rating of 4 or more counts as an order, less as a click


@dataclass(frozen=True, slots=True)
class Interaction:
    user_id: int
    item_id: int
    type: str
    position: int  # index in the user's sequence


def interactions(ds: SeqDataset, seed: int = 0) -> list[Interaction]:
    """All interactions of ``ds`` in replay order."""
    keyed: list[tuple[float, int, int, Interaction]] = []
    rng = random.Random(seed)
    for user, seq in ds.sequences.items():
        ratings = ds.ratings.get(user) if ds.ratings else None
        if ds.timestamps and user in ds.timestamps:
            times = [float(t) for t in ds.timestamps[user]]
        else:  # no timestamps: spread the user's events over [0, 1) keeping their order
            times = sorted(rng.random() for _ in seq)
        for pos, item in enumerate(seq):
            if ratings is None:
                etype = "order"  # review/purchase data sets: every interaction is a purchase
            else:
                etype = "order" if ratings[pos] >= ORDER_MIN_RATING else "click"
            keyed.append((times[pos], user, pos, Interaction(user, item, etype, pos)))
    keyed.sort(key=lambda k: (k[0], k[1], k[2]))
    return [k[3] for k in keyed]


def before_window(ds: SeqDataset, window: int, seed: int = 0) -> SeqDataset:
    """``ds`` without the last ``window`` interactions of its replay order (users left with
    none are dropped; timestamps and ratings cut alike; items and profiles kept)."""
    if window <= 0:
        return ds
    order = interactions(ds, seed)
    keep: dict[int, int] = {}  # user -> interactions kept (a prefix of their sequence)
    for it in order[: max(0, len(order) - window)]:
        keep[it.user_id] = max(keep.get(it.user_id, 0), it.position + 1)

    def cut(per_user: dict[int, list]) -> dict[int, list]:
        return {u: per_user[u][:n] for u, n in keep.items() if u in per_user}

    return SeqDataset(f"{ds.name}-before-{window}", cut(ds.sequences), ds.items,
                      timestamps=cut(ds.timestamps) if ds.timestamps else None,
                      ratings=cut(ds.ratings) if ds.ratings else None, users=ds.users)
