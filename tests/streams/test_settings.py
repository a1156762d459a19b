

from pathlib import Path

import pytest

from streams.settings import Settings, bootstrap_servers


def test_settings_from_env() -> None:
    s = Settings.from_env({"SIDSTREAM_BROKER": "kafka://k:1", "SIDSTREAM_METRICS_PORT": "9",
                           "SIDSTREAM_MODEL_DIR": "/m", "SIDSTREAM_REC_TTL_S": "60",
                           "SIDSTREAM_TOPIC_PARTITIONS": "4", "SIDSTREAM_EXCLUDE_SEEN": "false"})
    assert (s.kafka.broker, s.worker.metrics_port, s.models.model_dir, s.redis.rec_ttl_s,
            s.kafka.topic_partitions) == \
        ("kafka://k:1", 9, Path("/m"), 60, 4)
    assert s.channels.exclude_seen is False
    assert Settings.from_env({}).redis.redis_url == "redis://127.0.0.1:6379/0"
    assert Settings.from_env(s.env()) == s
    with pytest.raises(ValueError, match="SIDSTREAM_METRICS_PORT"):
        Settings.from_env({"SIDSTREAM_METRICS_PORT": "x"})
    with pytest.raises(ValueError):
        Settings.from_env({"SIDSTREAM_TOPIC_PARTITIONS": "0"})


def test_bootstrap_servers() -> None:
    assert bootstrap_servers("kafka://a:1;kafka://b:2") == ["a:1", "b:2"]
    assert bootstrap_servers("kafka://a:1,b:2") == ["a:1", "b:2"]


def test_store_defaults_to_memory_and_accepts_rocksdb_with_standby_replicas() -> None:
    s = Settings.from_env({})
    assert (s.worker.store, s.worker.standby_replicas) == ("memory", 1)
    disk = Settings.from_env({"SIDSTREAM_STORE": "rocksdb", "SIDSTREAM_STANDBY_REPLICAS": "0",
                              "SIDSTREAM_DATA_DIR": "/var/lib/sidstream"})
    assert (disk.worker.store, disk.worker.standby_replicas, disk.worker.data_dir) == \
        ("rocksdb", 0, Path("/var/lib/sidstream"))
    assert Settings.from_env(disk.env()) == disk


@pytest.mark.parametrize(("env", "message"), [
    ({"SIDSTREAM_STORE": "rocksdict"}, "SIDSTREAM_STORE must be one of memory, rocksdb"),
    ({"SIDSTREAM_STORE": "RocksDB"}, "SIDSTREAM_STORE must be one of memory, rocksdb"),
    ({"SIDSTREAM_STANDBY_REPLICAS": "-1"}, "SIDSTREAM_STANDBY_REPLICAS must be finite and >= 0"),
    ({"SIDSTREAM_STANDBY_REPLICAS": "one"}, "SIDSTREAM_STANDBY_REPLICAS='one'"),
])
def test_a_bad_store_setting_is_refused_naming_its_variable(env: dict[str, str],
                                                             message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


@pytest.mark.parametrize(("env", "message"), [
    ({"SIDSTREAM_COVISIT_MAX_ITEMS": "0"}, "SIDSTREAM_COVISIT_MAX_ITEMS must be positive"),
    ({"SIDSTREAM_STATE_MAX_USERS": "-5"}, "SIDSTREAM_STATE_MAX_USERS must be positive"),
    ({"SIDSTREAM_MEMORY_REFRESH_S": "0"}, "SIDSTREAM_MEMORY_REFRESH_S must be positive"),
    ({"SIDSTREAM_REDIS_PENDING_MAX": "100"}, "SIDSTREAM_REDIS_PENDING_MAX must be >= "
                                             "SIDSTREAM_MODEL_BATCH_MAX"),
])
def test_a_memory_bound_that_cannot_hold_is_refused(env: dict[str, str], message: str) -> None:
    """A bound of 0 would evict everything at once; a pending-list bound below one model job's
    lists could not be held (a job's lists go in together)."""
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)
    bounds = Settings.from_env({}).channels
    assert bounds.covisit_max_items == 200_000 and bounds.popularity_max_items == 1_000_000


def test_an_override_wins_over_the_same_setting_in_the_environment() -> None:
    s = Settings.from_env({"SIDSTREAM_STORE": "memory", "SIDSTREAM_SEQ_LEN": "7"},
                          store="rocksdb")
    assert s.worker.store == "rocksdb" and s.state.seq_len == 7


@pytest.mark.parametrize("bad", ["worker 0", "w/0", "x" * 250, "wörker"])
def test_a_group_instance_id_kafka_would_refuse_is_refused_at_start(bad: str) -> None:
    """Kafka refuses such a group.instance.id only when the worker joins; refuse it when the
    settings are read, naming the variable."""
    with pytest.raises(ValueError, match="SIDSTREAM_GROUP_INSTANCE_ID"):
        Settings.from_env({"SIDSTREAM_GROUP_INSTANCE_ID": bad})
    s = Settings.from_env({"SIDSTREAM_GROUP_INSTANCE_ID": "worker-0.eu_1"})
    assert s.kafka.group_instance_id == "worker-0.eu_1"
    assert Settings.from_env({}).kafka.group_instance_id == ""  # dynamic membership
