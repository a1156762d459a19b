"""Ranker artifacts: a versioned directory with manifest, weights, feature table and ONNX.

Layout (``root`` is e.g. ``$SIDSTREAM_MODEL_DIR/ranker``)::

    root/LATEST                      name of the newest version
    root/<version>/manifest.json     format, version, data hash, config, metrics, file hashes
    root/<version>/ranker.pt         torch state_dict (plain PyTorch path)
    root/<version>/ranker.onnx       its serving graph for onnxruntime (export/onnx_export.py)
    root/<version>/features.npz      item feature table (models/rank/features.py)
    root/<version>/features.json     its vocabularies

A version is written into a temporary directory and renamed into place, so readers never see
half an artifact. Loading checks the format, every file's sha256 and that the config, feature
table and weights agree, and raises :class:`ArtifactError` otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from models.artifacts import file_problem, sha256_file
from models.rank.features import ItemFeatures
from models.rank.model import Ranker, RankerConfig

log = logging.getLogger(__name__)

FORMAT = "sidstream-ranker"
FORMAT_VERSION = 2  # 2: ranker.onnx is the serving graph (item ids + feature table in)
MANIFEST, WEIGHTS, ONNX = "manifest.json", "ranker.pt", "ranker.onnx"
LATEST = "LATEST"
REQUIRED = ("format", "format_version", "version", "created", "data", "config", "metrics", "files")


class ArtifactError(ValueError):
    """A ranker artifact that is missing, incomplete, tampered with or inconsistent."""


@dataclass
class RankerArtifact:
    directory: Path
    manifest: dict[str, Any]
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
        return str(self.manifest["version"])


def save_artifact(root: Path, model: Ranker, features: ItemFeatures, *, data: dict[str, Any],
                  metrics: dict[str, Any], extra: dict[str, Any] | None = None,
                  write_onnx: Callable[[Path], dict[str, Any]] | None = None) -> Path:
    """Write a new version under ``root``; ``write_onnx(path)`` writes ranker.onnx there.

    ``data`` holds at least ``name`` and ``hash`` (``SeqDataset.data_hash()``). Returns the
    version directory and points ``root/LATEST`` at it.
    """
    version = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{str(data['hash'])[:8]}"
    base, n = version, 1
    while (root / version).exists():  # two saves within one second
        n += 1
        version = f"{base}-{n}"
    final, tmp = root / version, root / f".{version}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(model.state_dict(), tmp / WEIGHTS)
    files = [tmp / WEIGHTS, *features.save(tmp)]
    manifest: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION,
                                "version": version, "created": time.strftime(
                                    "%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                "data": data, "config": dataclasses.asdict(model.cfg),
                                "metrics": metrics, **(extra or {})}
    if write_onnx is not None:
        manifest["onnx"] = write_onnx(tmp / ONNX)
        files.append(tmp / ONNX)
    manifest["files"] = {p.name: sha256_file(p) for p in files}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    tmp.rename(final)
    (root / LATEST).write_text(version + "\n")
    log.info("saved ranker artifact %s", final)
    return final


def resolve(path: Path) -> Path:
    """A version directory, or a root holding ``LATEST`` -> the version directory."""
    if (path / MANIFEST).is_file():
        return path
    if (path / LATEST).is_file():
        return path / (path / LATEST).read_text().strip()
    raise ArtifactError(f"{path}: no {MANIFEST} and no {LATEST} (not a ranker artifact)")


def read_manifest(directory: Path) -> dict[str, Any]:
    """Parse and validate ``manifest.json`` and the hashes of the files it lists."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{directory / MANIFEST}: {exc}") from exc
    missing = [k for k in REQUIRED if k not in manifest]
    if missing:
        raise ArtifactError(f"{directory}: manifest lacks {', '.join(missing)}")
    if manifest["format"] != FORMAT or manifest["format_version"] != FORMAT_VERSION:
        raise ArtifactError(f"{directory}: format {manifest['format']!r} v"
                            f"{manifest['format_version']}, expected {FORMAT!r} v{FORMAT_VERSION}")
    for key in ("name", "hash"):
        if key not in manifest["data"]:
            raise ArtifactError(f"{directory}: manifest data lacks {key!r}")
    problem = file_problem(directory, manifest["files"])
    if problem:
        raise ArtifactError(f"{directory}: {problem}")
    return manifest


def config_from(manifest: dict[str, Any]) -> RankerConfig:
    fields = {f.name for f in dataclasses.fields(RankerConfig)}
    given = set(manifest["config"])
    if given != fields:
        raise ArtifactError(f"config keys differ from RankerConfig: unknown "
                            f"{sorted(given - fields)}, missing {sorted(fields - given)}")
    return RankerConfig(**manifest["config"])


def load_artifact(path: Path | str, need_onnx: bool = True) -> RankerArtifact:
    """Load and validate the artifact at ``path`` (version directory or root with LATEST)."""
    directory = resolve(Path(path))
    manifest = read_manifest(directory)
    cfg = config_from(manifest)
    for name in (WEIGHTS, "features.npz", "features.json", *([ONNX] if need_onnx else [])):
        if name not in manifest["files"]:
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
