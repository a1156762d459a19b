"""The faust app the worker runs: what reaches its consumer from the settings."""

from __future__ import annotations

import pytest

from streams.runtime.app import make_faust_app
from streams.settings import Settings


@pytest.mark.parametrize(("instance", "expected"), [("", None), ("worker-3", "worker-3")])
def test_the_group_instance_id_reaches_the_consumer_and_empty_means_dynamic(
        instance: str, expected: str | None) -> None:
    """An empty id must reach aiokafka as None (a "" id would make every worker the same static
    member, fencing each other)."""
    app = make_faust_app(Settings.from_env({}, group_instance_id=instance))
    assert app.conf.consumer_group_instance_id == expected
