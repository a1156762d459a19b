"""Ranker artifacts round-trip and loading rejects broken ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from export.onnx_export import random_inputs, torch_scores
from models.artifacts import LATEST, MANIFEST, ArtifactError
from models.rank.artifact import WEIGHTS, load_artifact, save_artifact
from models.rank.features import ItemFeatures
from models.rank.model import Ranker
from models.rank.toy import toy_dataset
from models.rank.train import model_config

torch.set_num_threads(1)


def _save(root: Path) -> tuple[Ranker, Path]:
    ds = toy_dataset(n_users=20, n_items=30)
    feats = ItemFeatures.from_dataset(ds)
    torch.manual_seed(0)
    model = Ranker(model_config(feats, 5, d=8, hidden=8)).eval()
    directory = save_artifact(root, model, feats, data={"name": ds.name, "hash": ds.data_hash()},
                              metrics={"test": {"auc_ctr": 0.7, "gauc_ctr": 0.69}})
    return model, directory


def test_round_trip_and_latest(tmp_path: Path) -> None:
    model, directory = _save(tmp_path)
    assert (tmp_path / LATEST).read_text().strip() == directory.name
    art = load_artifact(tmp_path, need_onnx=False)  # the root resolves through LATEST
    assert art.directory == directory and art.config == model.cfg
    assert art.manifest.metrics["test"]["gauc_ctr"] == 0.69
    assert art.manifest.data_hash == toy_dataset(n_users=20, n_items=30).data_hash()
    inputs = random_inputs(model, 3, 4)
    for a, b in zip(torch_scores(model, inputs), torch_scores(art.model, inputs), strict=True):
        np.testing.assert_array_equal(a, b)
    _, second = _save(tmp_path)  # a second save in the same second gets its own version
    assert second != directory and load_artifact(tmp_path, need_onnx=False).directory == second


def test_tampered_weights_are_rejected(tmp_path: Path) -> None:
    _, directory = _save(tmp_path)
    with (directory / WEIGHTS).open("ab") as fh:
        fh.write(b"x")
    with pytest.raises(ArtifactError, match="sha256"):
        load_artifact(directory, need_onnx=False)


@pytest.mark.parametrize("change", ["format", "missing_key", "config", "onnx"])
def test_bad_manifest_is_rejected(tmp_path: Path, change: str) -> None:
    _, directory = _save(tmp_path)
    manifest = json.loads((directory / MANIFEST).read_text())
    if change == "format":
        manifest["format"] = 99
    elif change == "missing_key":
        del manifest["metrics"]
    elif change == "config":
        manifest["config"]["surprise"] = 1
    (directory / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError):
        load_artifact(directory, need_onnx=(change == "onnx"))


def test_not_an_artifact(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not a ranker artifact"):
        load_artifact(tmp_path)


def _as_format_2(directory: Path) -> None:
    """Rewrite a manifest in the layout rankers had before the shared artifact format."""
    man = json.loads((directory / MANIFEST).read_text())
    old = {"format": "sidstream-ranker", "format_version": 2, "version": man["version"],
           "created": man["created"], "config": man["config"], "metrics": man["metrics"],
           "files": man["files"], **man["extra"]}
    (directory / MANIFEST).write_text(json.dumps(old))


def test_a_deployed_format_2_ranker_still_loads(tmp_path: Path) -> None:
    model, directory = _save(tmp_path)
    _as_format_2(directory)
    art = load_artifact(tmp_path, need_onnx=False)
    assert art.config == model.cfg and art.manifest.format == 2
    assert art.manifest.data_hash == toy_dataset(n_users=20, n_items=30).data_hash()
    with (directory / WEIGHTS).open("ab") as fh:
        fh.write(b"x")
    with pytest.raises(ArtifactError, match="sha256"):
        load_artifact(directory, need_onnx=False)
