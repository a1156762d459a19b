from __future__ import annotations

from pathlib import Path

import pytest

from models.artifacts import write_artifact
from models.data.dataset import MOVIELENS, load_dataset
from models.data.timeline import before_window
from models.rank import artifact as ranker
from models.recall import recaller, sidrec_recaller
from streams.jobs import demo_models
from streams.jobs.demo import DemoConfig, _model_dir


def test_demo_model_dir_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIDSTREAM_MODEL_DIR", "/given")
    assert _model_dir(DemoConfig(), tmp_path) == "/given"
    monkeypatch.delenv("SIDSTREAM_MODEL_DIR")
    assert _model_dir(DemoConfig(models=False), tmp_path) == str(tmp_path / "models")
    assert _model_dir(DemoConfig(dataset="elsewhere"), tmp_path) == str(tmp_path / "models")
    built = tmp_path / "demo"
    movielens = before_window(load_dataset(MOVIELENS), demo_models.DEMO_HOLDOUT_EVENTS).data_hash()
    for sub, kind, fmt in (("recall", sidrec_recaller.KIND, sidrec_recaller.FORMAT),
                           ("ranker", ranker.KIND, ranker.FORMAT)):
        write_artifact(built / sub, kind, fmt, movielens, {}, {}, lambda d: None)
    (built / "seed.json.gz").write_bytes(b"")
    monkeypatch.setattr(demo_models, "DEMO_DIR", built)
    monkeypatch.setattr(demo_models.ensure_demo_models, "__defaults__", (built, 1))
    assert _model_dir(DemoConfig(), tmp_path) == str(built)  # present: reused, no training


def test_demo_models_of_an_older_format_are_trained_again(tmp_path: Path) -> None:
    write_artifact(tmp_path / "recall", sidrec_recaller.KIND, sidrec_recaller.FORMAT, "hash", {},
                   {}, lambda d: None)
    write_artifact(tmp_path / "ranker", "ranker", ranker.FORMAT - 1, "hash", {}, {},
                   lambda d: None)
    assert not demo_models.have_models(tmp_path)
    write_artifact(tmp_path / "ranker", "ranker", ranker.FORMAT, "hash", {}, {}, lambda d: None)
    assert demo_models.have_models(tmp_path)


def test_a_demo_still_holding_the_token_level_recall_model_trains_sidrec(tmp_path: Path
                                                                         ) -> None:
    """The demo serves the recall model the README measures (SIDRec): a model directory from
    before, with the token-level decoder as its newest recall artifact, is trained again."""
    write_artifact(tmp_path / "recall", recaller.KIND, recaller.FORMAT, "hash", {}, {},
                   lambda d: None)
    write_artifact(tmp_path / "ranker", "ranker", ranker.FORMAT, "hash", {}, {}, lambda d: None)
    assert not demo_models.have_models(tmp_path)


def test_demo_models_of_other_data_are_trained_again(tmp_path: Path) -> None:
    """Models trained on an older loading of MovieLens (before its duplicate films were merged)
    know items the data no longer has: the demo trains new ones."""
    for sub, kind, fmt in (("recall", sidrec_recaller.KIND, sidrec_recaller.FORMAT),
                           ("ranker", ranker.KIND, ranker.FORMAT)):
        write_artifact(tmp_path / sub, kind, fmt, "old", {}, {}, lambda d: None)
    assert demo_models.have_models(tmp_path)
    assert not demo_models.have_models(tmp_path, "new")
    assert demo_models.have_models(tmp_path, "old")
