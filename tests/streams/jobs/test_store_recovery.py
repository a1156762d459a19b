"""The restart measurement: its log parsing, and its three restarts at a tiny size."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.jobs.store_recovery import measure, recovery_seconds

LOG = """[2026-12-05 15:00:01,000] [1] [INFO] [^---Recovery]: Highwater for active changelog \
partitions:
+----+
[2026-12-05 15:00:02,500] [1] [INFO] [^---Recovery]: Restoring state from changelog topics...
[2026-12-05 15:00:04,250] [1] [INFO] [^---Recovery]: Recovery complete
[2026-12-05 15:00:09,000] [1] [INFO] [^---Recovery]: Highwater for active changelog partitions:
[2026-12-05 15:00:09,100] [1] [INFO] [^---Recovery]: Recovery complete
"""


def test_recovery_seconds_are_those_of_the_last_recovery() -> None:
    assert recovery_seconds(LOG) == pytest.approx(0.1)
    assert recovery_seconds(LOG.rsplit("[2026-12-05 15:00:09,000]", 1)[0]) == \
        pytest.approx(3.25)
    assert recovery_seconds("[2026-12-05 15:00:01,000] [1] [INFO] nothing") is None


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.extended  # the measurement job end to end (80 s): the worker tests cover each restart
def test_intact_disk_state_restores_nothing_wiped_and_memory_restore_everything(
        tmp_path: Path) -> None:
    got = measure(users=25, events=250, root=tmp_path)
    intact, wiped, memory = got["rocksdb_intact"], got["rocksdb_wiped"], got["memory"]
    assert got["changelog_records"] >= 25
    assert intact["restored_records"] == 0
    assert wiped["restored_records"] == memory["restored_records"] == got["changelog_records"]
    assert intact["users_in_state"] == wiped["users_in_state"] == memory["users_in_state"] == 25
    assert all(r["discarded"] == 0 and r["recovery_s"] is not None
               for r in (intact, wiped, memory))
