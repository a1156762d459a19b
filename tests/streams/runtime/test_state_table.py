"""``SIDSTREAM_STORE`` picks the user-state table's store; both count restored records."""

from __future__ import annotations

from pathlib import Path

import pytest
from faust.stores.memory import Store as MemoryStore

from streams.metrics import Metrics
from streams.runtime.app import make_faust_app
from streams.runtime.disk_store import DiskStore
from streams.runtime.state_table import make_table, store_url
from streams.settings import Settings
from tests.fixtures.disk_worker import changelog_record


@pytest.mark.parametrize(("store", "url", "cls"), [("memory", "memory://", MemoryStore),
                                                   ("rocksdb", "rocksdb://", DiskStore)])
def test_the_store_setting_picks_the_tables_store(tmp_path: Path, store: str, url: str,
                                                  cls: type) -> None:
    settings = Settings.from_env({}, store=store, data_dir=tmp_path, standby_replicas=2)
    app = make_faust_app(settings)
    assert store_url(settings) == url and app.conf.store.scheme == url[:-3]
    assert app.conf.table_standby_replicas == 2
    assert app.conf.tabledir == tmp_path / "v1" / "tables"
    metrics = Metrics()
    table = make_table(app, settings, metrics)
    assert type(table.data) is cls and app.tables["user-state"] is table
    records = [changelog_record(0, o, b'"u"', b'{"n": %d}' % o) for o in range(3)]
    if isinstance(table.data, DiskStore):
        table.data._db_for_partition(0)
    table.apply_changelog_batch(records)
    assert table.get("u") == {"n": 2}
    assert metrics.registry.get_sample_value("sidstream_state_restored_records_total") == 3
