"""CLI wiring: light imports, ``train-ranker`` end to end on a toy set, ``bench rank``."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from export.serving import RankBatch, RankerSession
from models.rank.artifact import load_artifact
from models.rank.toy import toy_dataset, write_shared_format
from streams.cli.main import build_parser


def _parse(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def test_cli_module_imports_nothing_heavy() -> None:
    code = ("import sys, streams.cli.main; "
            "print(sorted(m for m in ('torch', 'onnxruntime', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_train_ranker_then_bench(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_shared_format(toy_dataset(n_users=80, n_items=30), tmp_path / "toy")
    args = _parse(["train-ranker", str(data), "--out", str(tmp_path / "art"), "--epochs", "1",
                   "--d", "8", "--hidden", "8", "--max-hist", "5", "--eval-users", "20"])
    assert args.func(args) == 0
    art = load_artifact(tmp_path / "art")
    m = art.manifest
    assert m.extra["label_rule"] == "brand-repeat"
    assert m.extra["onnx"]["parity_max_abs_diff"] <= 1e-4
    assert {"auc_ctr", "gauc_ctr", "auc_ctcvr"} <= set(m.metrics["test"])
    assert art.onnx_path.is_file() and "test AUC" in capsys.readouterr().out
    sess = RankerSession.from_artifact(tmp_path / "art")
    assert sess.version == art.version
    scores = sess.score(RankBatch(np.array([[1, 2, 3]]), np.array([[2, 2, 4]]), None,
                                  np.array([[4, 5, 0]])))
    assert scores.pctr.shape == (1, 3) and scores.pctr[0, 2] == 0 and scores.pctr[0, 0] > 0

    out_json = tmp_path / "bench.json"
    args = _parse(["bench", "rank", "--artifact", str(tmp_path / "art"), "--sizes", "10,40",
                   "--cands-per-user", "10", "--seconds", "0.01", "--json", str(out_json)])
    assert args.func(args) == 0
    table = capsys.readouterr().out
    assert "ORT/torch" in table and "artifact" in table
    rows = json.loads(out_json.read_text())["rows"]
    assert {(r["backend"], r["cands"]) for r in rows} == {
        (b, n) for b in ("torch", "onnxruntime") for n in (10, 40)}
    assert all(r["cands_per_s"] > 0 and r["p99_ms"] >= r["p50_ms"] for r in rows)
