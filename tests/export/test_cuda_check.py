"""The CUDA check for GPU hosts, and the provider choice every host makes (CI has no GPU)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from export.bench import BenchConfig, load_model
from export.cuda_check import CudaCheckConfig, compare, cuda_reason
from export.serving import RankerSession, RankScores, choose_providers, import_onnxruntime
from streams.cli.main import main

FAST = CudaCheckConfig(sizes=(100, 300), seconds=0.01, min_reps=2)


def test_without_a_usable_cuda_device_the_check_says_why_and_exits_2(
        capsys: pytest.CaptureFixture[str]) -> None:
    reason = cuda_reason()
    rc = main(["bench", "rank-cuda", "--sizes", "100", "--seconds", "0.01"])
    out = capsys.readouterr().out
    if reason:  # CI and this machine: no GPU
        assert rc == 2 and reason in out
    else:  # a GPU host with onnxruntime-gpu: the check itself
        assert rc == 0 and "parity within" in out


def _sessions(tmp_path: Path) -> tuple[RankerSession, RankerSession, object, int]:
    model, features, onnx_path, _ = load_model(BenchConfig(), tmp_path)
    a, b = (RankerSession(onnx_path, features, model.cfg.max_hist, prefer_cuda=False)
            for _ in range(2))
    return a, b, features, model.cfg.max_hist


def test_compare_reports_each_sessions_speed_and_catches_a_score_drift(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, features, max_hist = _sessions(tmp_path)
    rows = compare(a, b, features, max_hist, FAST)  # type: ignore[arg-type]
    assert [r["cands"] for r in rows] == [100, 300]
    assert all(r["parity_ok"] and r["max_abs_diff"] == 0.0 for r in rows)
    assert all(r["a"]["cands_per_s"] > 0 and r["b"]["cands_per_s"] > 0 for r in rows)
    score = b.score
    monkeypatch.setattr(b, "score", lambda batch: RankScores(*(
        x + np.float32(1e-3) for x in score(batch))))
    drifted = compare(a, b, features, max_hist, FAST)  # type: ignore[arg-type]
    assert not any(r["parity_ok"] for r in drifted)
    assert drifted[0]["max_abs_diff"] == pytest.approx(1e-3, rel=1e-3)


def test_the_provider_choice_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    choose_providers.cache_clear()
    with caplog.at_level(logging.INFO, logger="export.serving"):
        first = choose_providers(True)
        assert choose_providers(True) == first
    chosen = [r for r in caplog.records if r.getMessage().startswith("onnxruntime ")]
    assert len(chosen) == 1
    assert ("CUDA (CPU as fallback)" in chosen[0].getMessage()) == (len(first) == 2)


def test_without_onnxruntime_the_error_names_the_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(ImportError, match=r"sidstream\[cpu\].*sidstream\[gpu\]"):
        import_onnxruntime()
