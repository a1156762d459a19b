"""The restart measurement: its log parsing, and its three restarts at a tiny size."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from streams.jobs.store_recovery import log_times, measure, recovery_seconds

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


OPENED = """[2026-12-05 15:00:05,000] [1] [INFO] opening partition 2 for gen id 1 app id 1
[2026-12-05 15:00:06,000] [1] [INFO] opening partition 0 for gen id 1 app id 1
[2026-12-05 15:00:08,500] [1] [INFO] [^---Recovery]: Highwater for active changelog partitions:
[2026-12-05 15:00:09,000] [1] [INFO] [^---Recovery]: Recovery complete
"""


def test_opening_the_tables_is_timed_apart_from_the_join_and_the_recovery() -> None:
    started = datetime(2026, 12, 5, 15, 0, 0)
    # an earlier assignment's opening and recovery do not count
    got = log_times(OPENED.replace("15:00:0", "14:59:5") + OPENED, started)
    assert got == {"join_s": 5.0, "open_s": 3.5, "recovery_s": 0.5}
    # the memory store opens nothing: the join runs to the recovery start
    assert log_times(LOG, started) == {"join_s": 9.0, "open_s": 0.0, "recovery_s": 0.1}
    assert log_times("nothing", started)["join_s"] is None


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
