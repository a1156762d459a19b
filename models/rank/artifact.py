"""Ranker artifacts, in the one artifact format (``models/artifacts.py``), kind ``ranker``.

Files of a version (``root`` is e.g. ``$SIDSTREAM_MODEL_DIR/ranker``)::

    root/<version>/manifest.json     kind, format, version, data hash, config, metrics, hashes;
                                     extra: data set, label rule, ONNX export and training notes
    root/<version>/ranker.pt         torch state_dict (plain PyTorch path)
    root/<version>/ranker.onnx       its serving graph for onnxruntime (export/onnx_export.py)
    root/<version>/features.npz      item feature table (models/rank/features.py)
    root/<version>/features.json     its vocabularies

Loading checks the manifest and every file's sha256 (``load_manifest``) and that the config,
feature table and weights agree, and raises :class:`ArtifactError` otherwise.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from models.artifacts import (
    MANIFEST,
    ArtifactError,
    Manifest,
    file_problem,
    load_manifest,
    resolve,
    write_artifact,
)
from models.rank.features import ItemFeatures
from models.rank.model import Ranker, RankerConfig

KIND = "ranker"
FORMAT = 3  # 3: the shared manifest; 2 (still read): the same files, a ranker-only manifest
LEGACY = ("sidstream-ranker", 2)  # format name and version in a format-2 manifest
WEIGHTS, ONNX = "ranker.pt", "ranker.onnx"


@dataclass
class RankerArtifact:
    directory: Path
    manifest: Manifest
    model: Ranker
    features: ItemFeatures

    @property
    def config(self) -> RankerConfig:
        return self.model.cfg

    @property
    def onnx_path(self) -> Path:
        return self.directory / ONNX

    @property
    def version(self) -> str:
        return self.manifest.version


def save_artifact(root: Path, model: Ranker, features: ItemFeatures, *, data: dict[str, Any],
                  metrics: dict[str, Any], extra: dict[str, Any] | None = None,
                  write_onnx: Callable[[Path], dict[str, Any]] | None = None) -> Path:
    """Write a new version under ``root``; ``write_onnx(path)`` writes ranker.onnx there.

    ``data`` holds at least ``name`` and ``hash`` (``SeqDataset.data_hash()``). Returns the
    version directory and points ``root/LATEST`` at it.
    """
    def writer(tmp: Path) -> dict[str, Any]:
        torch.save(model.state_dict(), tmp / WEIGHTS)
        features.save(tmp)
        return {"onnx": write_onnx(tmp / ONNX)} if write_onnx is not None else {}

    return write_artifact(Path(root), KIND, FORMAT, str(data["hash"]),
                          dataclasses.asdict(model.cfg), metrics, writer,
                          extra={"data": data, **(extra or {})})


def _legacy_manifest(directory: Path) -> Manifest | None:
    """A format-2 ranker manifest (written before the shared format) as a :class:`Manifest`,
    its files verified; None for any other manifest, which ``load_manifest`` then judges.
    Deployed rankers keep serving across the upgrade; training writes format 3."""
    try:
        raw = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or (raw.get("format"), raw.get("format_version")) != LEGACY:
        return None
    try:
        extra = {k: v for k, v in raw.items() if k not in LEGACY_KEYS}
        man = Manifest(KIND, LEGACY[1], raw["version"], raw["created"], str(raw["data"]["hash"]),
                       raw["config"], raw["metrics"], raw["files"], extra)
    except (KeyError, TypeError) as exc:
        raise ArtifactError(f"{directory}: format-2 ranker manifest lacks {exc}") from exc
    problem = file_problem(directory, man.files)
    if problem:
        raise ArtifactError(f"{directory}: {problem}")
    return man


LEGACY_KEYS = ("format", "format_version", "version", "created", "config", "metrics", "files")


def config_from(manifest: Manifest) -> RankerConfig:
    fields = {f.name for f in dataclasses.fields(RankerConfig)}
    given = set(manifest.config)
    if given != fields:
        raise ArtifactError(f"config keys differ from RankerConfig: unknown "
                            f"{sorted(given - fields)}, missing {sorted(fields - given)}")
    return RankerConfig(**manifest.config)


def load_artifact(path: Path | str, need_onnx: bool = True) -> RankerArtifact:
    """Load and validate the artifact at ``path`` (version directory or root with LATEST)."""
    directory = resolve(Path(path), KIND)
    manifest = _legacy_manifest(directory) or load_manifest(directory, kind=KIND, fmt=FORMAT)
    cfg = config_from(manifest)
    for name in (WEIGHTS, "features.npz", "features.json", *([ONNX] if need_onnx else [])):
        if name not in manifest.files:
            raise ArtifactError(f"{directory}: manifest does not list {name}")
    features = ItemFeatures.load(directory)
    if features.n_fields != cfg.n_fields or features.n_trained_items != cfg.n_items:
        raise ArtifactError(f"{directory}: feature table ({features.n_fields} fields, "
                            f"{features.n_trained_items} items) does not fit the config")
    model = Ranker(cfg)
    state = torch.load(directory / WEIGHTS, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ArtifactError(f"{directory}: weights do not fit the config: {exc}") from exc
    model.eval()
    return RankerArtifact(directory, manifest, model, features)
