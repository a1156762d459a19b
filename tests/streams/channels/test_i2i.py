"""The DeepI2I channel in a pipeline with a real similar-items table."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.model_pipelines import lists_of, make, rec


def test_i2i_channel_brings_table_neighbours(model_dir: Path) -> None:
    from streams.channels.i2i import I2I
    from tests.fixtures.stream_models import write_i2i

    write_i2i(model_dir)
    pipe, _, _ = make(model_dir, quota_generative=0, quota_covisit=0, quota_popular=0)
    out = pipe.process([rec("u9", 10, n=1)], {}.get)
    items = {c.item_id: c.source for c in lists_of(out)["u9"]}
    assert items == {11: I2I, 12: I2I, 13: I2I, 14: I2I, 15: I2I}
