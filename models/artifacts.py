"""The one artifact format of every model kind (tokenizer, recall, ranker, i2i).

Layout: ``<root>/<version>/`` holds ``manifest.json`` and the kind's files; ``<root>/LATEST``
names the newest version (written by training), ``<root>/SERVING`` the promoted one (written by
``sidstream promote``; workers serve it once it exists, see :func:`pointer`). A manifest records
kind, format, version, creation time, data hash, config, metrics, the sha256 of every file and a
kind's own ``extra`` fields; :func:`load_manifest` refuses an artifact whose manifest is missing
or malformed, whose kind or format does not match, or whose files are missing or altered, with
an :class:`ArtifactError` (what a hot-reloading worker catches to keep serving the previous
model). Writes go to a temporary directory renamed into place, so readers never see half an
artifact.
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
LATEST = "LATEST"  # newest version, written by training
SERVING = "SERVING"  # the promoted version (``sidstream promote``); wins over LATEST
REQUIRED = ("kind", "format", "version", "created", "data_hash", "config", "metrics", "files")


class ArtifactError(ValueError):
    """The artifact is missing, corrupt or incompatible (bad input: the CLI reports it as an
    error line, a worker refuses the version and keeps serving)."""


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
    extra: dict[str, Any] = field(default_factory=dict)  # the kind's own fields


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


def new_version(root: Path, data_hash: str) -> str:
    """Sortable version name, new under ``root``: UTC time plus the data hash prefix (and a
    counter when two versions are written within one second)."""
    base = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{data_hash[:8]}"
    version, n = base, 1
    while (root / version).exists():
        n += 1
        version = f"{base}-{n}"
    return version


def write_artifact(root: Path, kind: str, fmt: int, data_hash: str, config: dict[str, Any],
                   metrics: dict[str, Any], writer: Callable[[Path], dict[str, Any] | None],
                   version: str | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Create ``root/<version>``: ``writer(tmpdir)`` writes the files (and may return fields for
    ``extra``), then the manifest; ``root/LATEST`` then names the new version."""
    root = Path(root)
    version = version or new_version(root, data_hash)
    final = root / version
    if final.exists():
        raise ArtifactError(f"{final} already exists")
    tmp = root / f".tmp-{version}-{os.getpid()}"
    tmp.mkdir(parents=True)
    try:
        written = writer(tmp) or {}
        files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        man = Manifest(kind, fmt, version, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       data_hash, config, metrics, files, {**(extra or {}), **written})
        (tmp / MANIFEST).write_text(json.dumps(asdict(man), indent=2, sort_keys=True))
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    set_pointer(root, LATEST, version)
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


def set_pointer(root: Path, name: str, version: str) -> None:
    """Point ``root/<name>`` (``LATEST`` or ``SERVING``) at ``version``, atomically."""
    tmp = Path(root) / f".{name}.tmp"
    tmp.write_text(version + "\n")
    tmp.replace(Path(root) / name)


def read_pointer(root: Path, name: str) -> str | None:
    """The version ``root/<name>`` names (None: no such pointer)."""
    try:
        return (Path(root) / name).read_text().strip() or None
    except OSError:
        return None


def latest(root: Path) -> str | None:
    """The version ``root/LATEST`` names (None: no pointer)."""
    return read_pointer(root, LATEST)


def pointer(root: Path) -> str | None:
    """The version workers serve: ``SERVING`` once anything was promoted, else ``LATEST``."""
    return read_pointer(root, SERVING) or latest(root)


def versions(root: Path) -> list[str]:
    """Versions under ``root``, the one to serve (:func:`pointer`) first, then newest first.
    A version is a directory with a manifest: ``promotions/`` (the gate's decisions) and
    half-written or foreign directories are not."""
    root = Path(root)
    if not root.is_dir():
        return []
    names = sorted((p.name for p in root.iterdir()
                    if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file()),
                   reverse=True)
    first = pointer(root)
    if first in names:
        names.remove(first)
        names.insert(0, first)
    return names


def resolve(path: Path, kind: str = "") -> Path:
    """An artifact directory, or a root whose ``LATEST`` names one."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return path
    version = latest(path)
    if version:
        return path / version
    what = f"not a {kind} artifact" if kind else "not an artifact"
    raise ArtifactError(f"{path}: no {MANIFEST} and no {LATEST} pointer ({what})")


def load_manifest(path: Path, kind: str | None = None, fmt: int | None = None,
                  verify: bool = True) -> Manifest:
    """Read and validate the manifest of artifact ``path`` (see module docstring)."""
    path = resolve(path, kind or "")
    try:
        raw = json.loads((path / MANIFEST).read_text())
        missing = [k for k in REQUIRED if k not in raw]
        if missing:
            raise ValueError(f"lacks {', '.join(missing)}")
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
