from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from models.artifacts import pointer, resolve, write_artifact
from models.data.dataset import load_dataset
from streams.jobs.promote import (
    ArmResult,
    PromoteConfig,
    decide,
    in_sample,
    kind_of,
    run_promote,
)
from streams.metrics import Metrics
from streams.runtime.model_watcher import ModelWatcher
from streams.settings import Settings
from tests.fixtures.stream_models import copy_version


def arm(click: float, order: float, clicks: int = 100) -> ArmResult:
    return ArmResult("v", click, order, clicks, 100)


def test_rule_order_must_rise_and_clicks_may_drop_less_than_ten_percent() -> None:
    assert decide(None, arm(0.1, 0.1))[0]
    assert decide(arm(0.20, 0.10), arm(0.19, 0.11))[0]  # -5% clicks, more orders
    assert not decide(arm(0.20, 0.10), arm(0.17, 0.12))[0]  # -15% clicks
    assert not decide(arm(0.20, 0.10), arm(0.30, 0.10))[0]  # orders flat
    assert decide(arm(0.20, 0.10), arm(0.0, 0.11, clicks=0))[0]  # no click events to judge


WINDOW = 200  # walk interactions replayed by the gate, held out of training


@pytest.fixture(scope="module")
def held_out_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SIDRec version trained on the walk without its last ``WINDOW`` interactions."""
    import torch

    from tests.fixtures.stream_models import build_sidrec_model_dir

    torch.set_num_threads(1)
    return build_sidrec_model_dir(tmp_path_factory.mktemp("promote"), holdout_events=WINDOW)


def test_promotion_moves_serving_and_workers_follow_it(held_out_models: Path, tmp_path: Path
                                                      ) -> None:
    model_dir = Path(shutil.copytree(held_out_models, tmp_path / "models"))
    data = held_out_models.parent / "data"  # the walk data set
    settings = Settings.from_env({}, model_dir=model_dir)
    first = model_dir / "recall" / (model_dir / "recall" / "LATEST").read_text().strip()
    doc = run_promote(PromoteConfig(first, data=str(data), events=WINDOW), settings)
    assert doc["promoted"] and doc["champion_version"] is None and "champion" not in doc
    assert doc["out_of_sample"]
    assert (model_dir / "recall" / "SERVING").read_text().strip() == first.name

    same = copy_version(model_dir, "recall", "29990101T000000-same")  # LATEST moves to it
    doc = run_promote(PromoteConfig(model_dir / "recall" / same, data=str(data), events=WINDOW),
                      settings)
    assert not doc["promoted"] and doc["champion_version"] == first.name
    assert doc["out_of_sample"] and "does not rise" in doc["reason"]
    assert doc["challenger"]["order_rate"] == doc["champion"]["order_rate"]  # same model
    saved = json.loads((model_dir / "recall" / "promotions" / f"{same}.json").read_text())
    assert saved["reason"] == doc["reason"]
    assert pointer(model_dir / "recall") == first.name  # LATEST is newer, SERVING wins
    models = ModelWatcher(settings, Metrics()).load_initial()
    assert models.recall_version == first.name


def test_a_version_that_saw_the_window_is_refused_whatever_its_figures(
        held_out_models: Path, tmp_path: Path) -> None:
    """The gate's figures must be out of sample: a challenger trained on the replayed window
    (or on other data) is refused, even where it would have won."""
    model_dir = Path(shutil.copytree(held_out_models, tmp_path / "models"))
    data = held_out_models.parent / "data"
    ds = load_dataset(str(data))
    version = (model_dir / "recall" / "LATEST").read_text().strip()
    assert in_sample(model_dir / "recall" / version, ds, WINDOW) == ""
    assert "trained on the replayed window" in in_sample(model_dir / "recall" / version, ds,
                                                         WINDOW + 1)
    for name, holdout, data_hash in (("saw", 0, ds.data_hash()),
                                     ("other", WINDOW, "0" * 16)):
        v = copy_version(model_dir, "recall", f"29990101T00000{len(name)}-{name}")
        manifest = model_dir / "recall" / v / "manifest.json"
        man = json.loads(manifest.read_text())
        man["config"]["train"]["holdout_events"], man["data_hash"] = holdout, data_hash
        manifest.write_text(json.dumps(man))
        doc = run_promote(PromoteConfig(model_dir / "recall" / v, data=str(data), events=WINDOW,
                                        dry_run=True), Settings.from_env({}, model_dir=model_dir))
        assert not doc["promoted"] and not doc["out_of_sample"]
        assert doc["reason"].startswith("in sample: ") and v in doc["reason"]


def test_a_sidrec_artifact_is_a_recall_challenger_and_anything_else_is_refused(
        tmp_path: Path) -> None:
    """The demo and ``make recall-model`` produce SIDRec artifacts: promote must take them as
    recall challengers (it once knew only the token-level kind)."""
    for kind, fmt in (("sidrec", 1), ("recall", 1), ("sasrec", 1)):
        write_artifact(tmp_path / kind, kind, fmt, "hash", {}, {}, lambda d: None)
    assert kind_of(resolve(tmp_path / "sidrec")) == "recall"
    assert kind_of(resolve(tmp_path / "recall")) == "recall"
    with pytest.raises(ValueError, match="not a recall or ranker artifact"):
        kind_of(resolve(tmp_path / "sasrec"))
