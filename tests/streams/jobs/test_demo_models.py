from __future__ import annotations

from pathlib import Path

import pytest

from streams.jobs import demo_models
from streams.jobs.demo import DemoConfig, _model_dir


def test_demo_model_dir_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIDSTREAM_MODEL_DIR", "/given")
    assert _model_dir(DemoConfig(), tmp_path) == "/given"
    monkeypatch.delenv("SIDSTREAM_MODEL_DIR")
    assert _model_dir(DemoConfig(models=False), tmp_path) == str(tmp_path / "models")
    assert _model_dir(DemoConfig(dataset="elsewhere"), tmp_path) == str(tmp_path / "models")
    built = tmp_path / "demo"
    for kind in ("recall", "ranker"):
        (built / kind).mkdir(parents=True)
        (built / kind / "LATEST").write_text("v\n")
    (built / "seed.json.gz").write_bytes(b"")
    monkeypatch.setattr(demo_models, "DEMO_DIR", built)
    monkeypatch.setattr(demo_models.ensure_demo_models, "__defaults__", (built, 1))
    assert _model_dir(DemoConfig(), tmp_path) == str(built)  # present: reused, no training
