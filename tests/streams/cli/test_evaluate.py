"""``train-tokenizer`` -> ``train-sidrec`` -> ``eval-recall`` end to end on a toy catalogue,
and ``bench recall --synthetic-items``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from models.artifacts import load_manifest
from models.data.dataset import ItemMeta, SeqDataset
from models.rank.toy import toy_dataset, write_shared_format
from streams.cli.main import build_parser


def _run(argv: list[str]) -> int:
    args: argparse.Namespace = build_parser().parse_args(argv)
    return int(args.func(args))


@pytest.mark.slow
def test_an_id_only_catalogue_trains_evaluates_and_reports_cold_items(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toy = toy_dataset(n_users=120, n_items=40)
    id_only = SeqDataset(toy.name, toy.sequences, {i: ItemMeta(i) for i in toy.items})
    data = str(write_shared_format(id_only, tmp_path / "toy"))
    assert _run(["train-tokenizer", "--data", data, "--out", str(tmp_path / "tok"),
                 "--epochs", "5", "--levels", "2", "--codebook-size", "8"]) == 0
    tok = load_manifest(tmp_path / "tok")
    assert tok.metrics["embedding"] == "collab" and tok.config["embedding"] == "auto"
    assert _run(["train-sidrec", "--data", data, "--tokenizer", str(tmp_path / "tok"),
                 "--out", str(tmp_path / "rec"), "--epochs", "2", "--eval-every", "1",
                 "--d-model", "16", "--layers", "1", "--cold-items", "0.1"]) == 0
    man = load_manifest(tmp_path / "rec")
    assert len(man.config["held_out"]) == 4 and man.metrics["train"]["epochs_run"] == 2
    assert {"beam", "item", "hybrid"} <= set(man.metrics["test"])
    # no text: the held-out items cannot come back through the catalogue path
    assert man.metrics["cold_items"]["added"] == 0
    capsys.readouterr()
    out = tmp_path / "eval.json"
    assert _run(["eval-recall", "--data", data, "--artifact", str(tmp_path / "rec"),
                 "--mode", "beam", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["mode"] == "beam" and 0 <= res["sidstream/all"]["recall@10"] <= 1
    assert "cold items: 0 of 4" in capsys.readouterr().out


def test_bench_recall_on_synthetic_catalogues(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "scale.json"
    assert _run(["bench", "recall", "--synthetic-items", "300,1200", "--users", "64",
                 "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["items"] for r in rows] == [300, 1200]
    assert all(r[f"{m}_users_per_s"] > 0 for r in rows for m in ("beam", "item", "hybrid"))
    assert rows[1]["item_table_mb"] > rows[0]["item_table_mb"]
    assert "hybrid u/s" in capsys.readouterr().out
