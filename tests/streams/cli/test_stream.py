"""``sidstream worker --store`` and ``sidstream bench state``: their flags."""

from __future__ import annotations

import pytest

from streams.cli.main import build_parser
from streams.cli.stream import worker_settings


def test_worker_store_flag_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIDSTREAM_STORE", "memory")
    monkeypatch.setenv("SIDSTREAM_SEQ_LEN", "7")
    args = build_parser().parse_args(["worker", "--store", "rocksdb"])
    settings = worker_settings(args)
    assert settings is not None
    assert settings.worker.store == "rocksdb"
    assert settings.state.seq_len == 7  # the rest still comes from the environment


def test_worker_without_store_flag_leaves_the_environment_to_the_worker() -> None:
    assert worker_settings(build_parser().parse_args(["worker"])) is None


def test_worker_refuses_an_unknown_store(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["worker", "--store", "disk"])
    assert "invalid choice" in capsys.readouterr().err


def test_bench_state_parses_sizes_stores_and_its_session_timeout() -> None:
    args = build_parser().parse_args(["bench", "state", "--users", "1000,10000", "--stores",
                                      "rocksdb", "--events", "500", "--session-timeout", "3",
                                      "--json", "out.json"])
    assert (args.users, args.stores, args.events, args.session_timeout, args.json) == \
        ("1000,10000", "rocksdb", 500, 3.0, "out.json")
    assert not args.no_wiped_restart and args.func.__name__ == "_cmd_bench_state"
