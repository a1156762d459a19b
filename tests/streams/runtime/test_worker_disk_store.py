"""A worker on its local RocksDB state (``SIDSTREAM_STORE=rocksdb``) through a real broker and
Redis: what a restart reads from the changelog, and how a lost, corrupt or foreign local state is
rebuilt. Each test SIGKILLs the worker, checks the changelog records its successor applied
(``sidstream_state_restored_records_total``) and the discards it counted, then sends new events
for every user and compares the whole state with a clean run's (``streams.jobs.chaos.compare``:
sequences, dedup ids, ordered items, each list in Redis from the user's last event). New states
are built on what the restarted worker holds locally, so a missing, stale or doubled local state
shows in that comparison."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from infra.embedded import Stack, embedded_stack
from infra.worker_process import WorkerProcess
from streams.contracts.events import Event, event_to_json
from streams.jobs.chaos import TABLE_CHANGELOG, converge, overwrite_with_garbage, table_files
from streams.runtime.topics import ensure_topics
from streams.settings import EVENTS_TOPIC, Settings
from tests.fixtures.helpers import log_tail

pytestmark = [pytest.mark.integration, pytest.mark.slow]

USERS = 12
PARTITIONS = 4


@dataclass
class Rig:
    """One app on one embedded stack, its worker on one data directory, the events sent."""

    stack: Stack
    root: Path
    settings: Settings = field(init=False)
    events: list[Event] = field(default_factory=list)
    worker: WorkerProcess | None = None

    def __post_init__(self) -> None:
        self.use(self.stack)

    def use(self, stack: Stack) -> None:
        self.stack = stack
        self.settings = Settings.from_env({
            **stack.env(), "SIDSTREAM_APP_ID": "disk", "SIDSTREAM_STORE": "rocksdb",
            "SIDSTREAM_DATA_DIR": str(self.data_dir), "SIDSTREAM_TOPIC_PARTITIONS":
            str(PARTITIONS), "SIDSTREAM_SEQ_LEN": "500", "SIDSTREAM_DEDUP_WINDOW": "500",
            "SIDSTREAM_MODEL_DIR": str(self.root / "models"), "SIDSTREAM_METRICS_PORT": ""})
        ensure_topics(self.settings)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def partition_dirs(self) -> list[Path]:
        return sorted((self.data_dir / "v1" / "tables").glob("user-state-*.db"))

    def start(self) -> WorkerProcess:
        self.worker = WorkerProcess(self.settings.env(), self.root / "worker.log").start()
        self.worker.wait_ready(timeout_s=120)
        return self.worker

    def send(self, per_user: int) -> None:
        """``per_user`` clicks of every user, each on a new item."""
        producer = KafkaProducer(bootstrap_servers=self.settings.bootstrap_servers, acks="all")
        base = int(time.time() * 1000)
        for _ in range(per_user):
            for u in range(USERS):
                n = len(self.events)
                ev = Event(uuid.uuid4().hex, f"user-{u}", f"item-{n}", "click", base + n)
                self.events.append(ev)
                producer.send(EVENTS_TOPIC, key=ev.user_key.encode(), value=event_to_json(ev))
        producer.flush()
        producer.close()

    def assert_exact(self, what: str) -> None:
        result = converge(what, self.settings, self.events, timeout_s=90, settle_s=0.5)
        assert result.ok, f"{result.line()}\n{log_tail(self.root / 'worker.log')}"

    def kill(self) -> None:
        """SIGKILL after the worker idled past a commit (else its successor re-reads events:
        deduplicated, but not what these tests look at)."""
        time.sleep(2.5)
        assert self.worker is not None
        self.worker.kill()

    def changelog_ends(self) -> list[int]:
        """End offset of each partition of the state table's changelog: its records (Tansu's
        end offsets are exact here, the worker sends it single-record batches)."""
        topic = TABLE_CHANGELOG.format(app_id=self.settings.kafka.app_id)
        consumer = KafkaConsumer(bootstrap_servers=self.settings.bootstrap_servers)
        try:
            parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            ends = consumer.end_offsets(parts)
            return [int(ends[tp]) for tp in parts]
        finally:
            consumer.close()

    def changelog_records(self) -> int:
        return sum(self.changelog_ends())

    def restored(self) -> int:
        assert self.worker is not None
        return int(self.worker.metrics().total("sidstream_state_restored_records_total"))

    def discarded(self, reason: str) -> int:
        assert self.worker is not None
        return int(self.worker.metrics().get("sidstream_state_discarded_total", reason=reason))


@pytest.fixture()
def rig(tmp_path: Path) -> Iterator[Rig]:
    with embedded_stack({}) as stack:
        r = Rig(stack, tmp_path)
        try:
            yield r
        finally:
            if r.worker is not None:
                r.worker.stop()


def test_restart_on_intact_disk_state_reads_only_the_changelog_tail_it_lacks(rig: Rig) -> None:
    rig.start()
    rig.send(8)
    rig.assert_exact("first events")
    rig.kill()
    snapshot = rig.root / "snapshot"
    shutil.copytree(rig.data_dir, snapshot)
    at_snapshot = rig.changelog_records()
    assert at_snapshot >= USERS

    rig.start()
    assert rig.restored() == 0, "local state intact and complete: nothing to read"
    rig.send(8)
    rig.assert_exact("events after the restart")
    rig.kill()
    tail = rig.changelog_records() - at_snapshot
    assert tail >= USERS

    shutil.rmtree(rig.data_dir)  # back to the older local state: the tail is what it lacks
    shutil.copytree(snapshot, rig.data_dir)
    rig.start()
    assert rig.restored() == tail
    assert rig.discarded("unreadable") == rig.discarded("ahead_of_changelog") == 0
    rig.send(4)
    rig.assert_exact("events after the restart on the older state")


def test_wiped_local_state_is_rebuilt_from_the_whole_changelog(rig: Rig) -> None:
    rig.start()
    rig.send(8)
    rig.assert_exact("first events")
    rig.kill()
    shutil.rmtree(rig.data_dir)
    rig.start()
    assert rig.restored() == rig.changelog_records()
    rig.send(4)
    rig.assert_exact("events after the restart on a wiped disk")


# "wal": RocksDB's own recovery of a torn log; `extended` (pytest -m extended): suite budget
@pytest.mark.parametrize("files", ["all", pytest.param("wal", marks=pytest.mark.extended)])
def test_corrupt_local_state_is_rebuilt_not_served(rig: Rig, files: str) -> None:
    """Garbage over every file of each partition's database (it no longer opens: discarded and
    rebuilt), or over its write-ahead log only (RocksDB opens what precedes the garbage, with
    the offset written in the same batch: recovery reads the rest)."""
    rig.start()
    rig.send(8)
    rig.assert_exact("first events")
    rig.kill()
    records = rig.changelog_records()
    dirs = rig.partition_dirs
    assert len(dirs) == PARTITIONS
    for f in table_files(rig.data_dir):
        if files == "all" or f.suffix == ".log":
            overwrite_with_garbage(f)
    rig.start()
    if files == "all":
        assert rig.discarded("unreadable") == PARTITIONS
        assert rig.restored() == records
    else:
        assert rig.discarded("unreadable") == 0 and 0 < rig.restored() <= records
    rig.send(4)
    rig.assert_exact(f"events after the restart on corrupt local state ({files})")


def test_local_state_ahead_of_a_new_changelog_is_discarded(rig: Rig) -> None:
    """The broker lost its log (in-memory Tansu restarted): the local databases hold offsets the
    new changelog has not reached. Serving them would mix the old users' states into the new
    log; faust would stop on its consistency check. They are discarded."""
    rig.start()
    rig.send(8)
    rig.assert_exact("first events")
    rig.kill()
    with_data = sum(1 for end in rig.changelog_ends() if end > 0)
    assert with_data > 0
    rig.stack.stop()
    with embedded_stack({}) as fresh:
        rig.use(fresh)
        rig.events.clear()  # the new broker has none of them
        try:
            rig.start()
            assert rig.discarded("ahead_of_changelog") == with_data
            assert rig.restored() == 0
            rig.send(4)
            rig.assert_exact("events sent to the new broker only")
        finally:
            assert rig.worker is not None
            rig.worker.stop()
            rig.worker = None


def test_a_static_member_restarted_after_sigkill_does_not_wait_out_its_old_session(
        rig: Rig) -> None:
    """With SIDSTREAM_GROUP_INSTANCE_ID the restarted worker is the killed one to the group: it
    takes its partitions back at its first join. As a dynamic member it would wait until the
    killed member's session (30 s here) expired before the group let it in."""
    session_s = 30.0
    rig.settings = rig.settings.with_values(session_timeout_s=session_s,
                                            group_instance_id="disk-0")
    rig.start()
    rig.send(2)
    rig.assert_exact("first events")
    rig.kill()
    t0 = time.monotonic()
    rig.start()
    took = time.monotonic() - t0
    assert took < session_s, f"the restart waited {took:.1f} s: the old session expired first"
    rig.send(2)
    rig.assert_exact("events after the static member's restart")
