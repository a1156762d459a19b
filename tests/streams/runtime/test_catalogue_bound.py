"""The known-item set's bound (no Redis needed: ``Catalogue.add``)."""

from __future__ import annotations

from streams.runtime.catalogue import Catalogue


def test_catalogue_stays_under_max_items() -> None:
    """A catalogue larger than the bound: new ids are not remembered past it (the Redis
    mirror answers for them), those remembered stay."""
    catalogue = Catalogue(range(50), max_items=80)
    assert len(catalogue) == 50
    catalogue.add(range(1000, 2000))
    assert len(catalogue) == 80 and set(range(50)) <= catalogue.known
    catalogue.add([5, 6])  # already known: nothing changes
    assert len(catalogue) == 80
