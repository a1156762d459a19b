"""Versioned artifact directories: ``<root>/<version>/`` with ``manifest.json`` and files.

Generic (any model kind: recall, tokenizer, ranker). A manifest records kind, format, version,
creation time, data hash, configs, metrics and the sha256 of every file; ``load_manifest``
refuses an artifact whose manifest is missing/malformed, whose kind or format does not match, or
whose files are missing or altered, with an ``ArtifactError`` (what a hot-reloading worker
catches to keep serving the previous model). Writes go to a temporary directory renamed into
place, and ``<root>/LATEST`` names the newest version, so readers never see half an artifact.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
LATEST = "LATEST"


class ArtifactError(RuntimeError):
    """The artifact is missing, corrupt or incompatible."""


@dataclass
class Manifest:
    kind: str
    format: int
    version: str
    created: str
    data_hash: str
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # name -> sha256


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_problem(directory: Path, files: dict[str, str]) -> str | None:
    """First file of ``files`` (name -> sha256) that is missing or altered, described."""
    for name, digest in files.items():
        path = directory / name
        if not path.is_file():
            return f"missing file {name}"
        if sha256_file(path) != digest:
            return f"{name} does not match its sha256 checksum in the manifest"
    return None


def new_version(data_hash: str) -> str:
    """Sortable version name: UTC time plus the data hash prefix."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{data_hash[:8]}"


def write_artifact(root: Path, kind: str, fmt: int, data_hash: str, config: dict[str, Any],
                   metrics: dict[str, Any], writer: Callable[[Path], None],
                   version: str | None = None) -> Path:
    """Create ``root/<version>``: ``writer(tmpdir)`` writes the files, then the manifest."""
    root = Path(root)
    version = version or new_version(data_hash)
    final = root / version
    if final.exists():
        raise ArtifactError(f"{final} already exists")
    tmp = root / f".tmp-{version}-{os.getpid()}"
    tmp.mkdir(parents=True)
    try:
        writer(tmp)
        files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        man = Manifest(kind, fmt, version, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       data_hash, config, metrics, files)
        (tmp / MANIFEST).write_text(json.dumps(asdict(man), indent=2, sort_keys=True))
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    (root / f".{LATEST}.tmp").write_text(version + "\n")
    (root / f".{LATEST}.tmp").replace(root / LATEST)
    log.info("wrote %s artifact %s", kind, final)
    return final


def _update_manifest(path: Path, section: str, values: dict[str, Any]) -> None:
    """Merge ``values`` into one section of an existing manifest, atomically (files are
    unchanged, so their checksums still hold)."""
    man = json.loads((Path(path) / MANIFEST).read_text())
    man[section].update(values)
    tmp = Path(path) / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(man, indent=2, sort_keys=True))
    tmp.replace(Path(path) / MANIFEST)


def update_metrics(path: Path, metrics: dict[str, Any]) -> None:
    """Merge ``metrics`` into an existing manifest."""
    _update_manifest(path, "metrics", metrics)


def update_config(path: Path, config: dict[str, Any]) -> None:
    """Merge ``config`` into an existing manifest's config (decoding settings tuned later)."""
    _update_manifest(path, "config", config)


def resolve(path: Path) -> Path:
    """An artifact directory, or a root whose ``LATEST`` names one."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return path
    if (path / LATEST).is_file():
        return path / (path / LATEST).read_text().strip()
    raise ArtifactError(f"{path}: no {MANIFEST} and no {LATEST} pointer")


def load_manifest(path: Path, kind: str | None = None, fmt: int | None = None,
                  verify: bool = True) -> Manifest:
    """Read and validate the manifest of artifact ``path`` (see module docstring)."""
    path = resolve(path)
    try:
        raw = json.loads((path / MANIFEST).read_text())
        man = Manifest(**raw)
    except (OSError, ValueError, TypeError) as exc:
        raise ArtifactError(f"{path}: unreadable manifest: {exc}") from exc
    if kind is not None and man.kind != kind:
        raise ArtifactError(f"{path}: kind {man.kind!r}, expected {kind!r}")
    if fmt is not None and man.format != fmt:
        raise ArtifactError(f"{path}: format {man.format}, this code reads format {fmt}")
    if verify:
        problem = file_problem(path, man.files)
        if problem:
            raise ArtifactError(f"{path}: {problem}")
    return man
