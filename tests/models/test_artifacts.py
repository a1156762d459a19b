"""The one artifact format: pointers, version names, strict manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.artifacts import (
    LATEST,
    MANIFEST,
    SERVING,
    ArtifactError,
    load_manifest,
    pointer,
    resolve,
    set_pointer,
    versions,
    write_artifact,
)


def _write(root: Path, tag: str = "a") -> Path:
    def writer(d: Path) -> dict[str, str]:
        (d / "w.bin").write_text(tag)
        return {"note": tag}

    return write_artifact(root, "toy", 1, "abcdef0123", {"c": 1}, {"m": 2}, writer,
                          extra={"given": True})


def test_two_versions_in_one_second_get_their_own_names_and_latest_moves(tmp_path: Path) -> None:
    first, second = _write(tmp_path, "a"), _write(tmp_path, "b")
    assert first != second and first.name < second.name  # names sort by creation
    assert (tmp_path / LATEST).read_text().strip() == second.name
    assert resolve(tmp_path) == second and versions(tmp_path) == [second.name, first.name]
    man = load_manifest(tmp_path, kind="toy", fmt=1)
    assert man.extra == {"given": True, "note": "b"} and man.data_hash == "abcdef0123"


def test_serving_wins_over_latest_once_promoted(tmp_path: Path) -> None:
    first, second = _write(tmp_path), _write(tmp_path)
    assert pointer(tmp_path) == second.name
    set_pointer(tmp_path, SERVING, first.name)
    assert pointer(tmp_path) == first.name and versions(tmp_path)[0] == first.name
    assert resolve(tmp_path) == second  # training and evaluation follow LATEST


def test_incomplete_or_foreign_manifests_are_refused(tmp_path: Path) -> None:
    directory = _write(tmp_path)
    with pytest.raises(ArtifactError, match="kind"):
        load_manifest(directory, kind="other")
    with pytest.raises(ArtifactError, match="format"):
        load_manifest(directory, kind="toy", fmt=2)
    raw = json.loads((directory / MANIFEST).read_text())
    del raw["metrics"]
    (directory / MANIFEST).write_text(json.dumps(raw))
    with pytest.raises(ArtifactError, match="lacks metrics"):
        load_manifest(directory)
    with pytest.raises(ArtifactError, match="not a toy artifact"):
        resolve(tmp_path / "nothing", "toy")


def test_the_promotions_folder_is_not_a_version(tmp_path: Path) -> None:
    """``promote`` writes its decisions to ``<root>/promotions/``: listed as the newest
    "version" (p sorts after digits), it became the champion of the next promotion and a
    worker's fallback, refused with an error each time."""
    only = write_artifact(tmp_path, "sidrec", 1, "hash", {}, {}, lambda d: None)
    (tmp_path / "promotions").mkdir()
    (tmp_path / "promotions" / f"{only.name}.json").write_text("{}")
    (tmp_path / "20991231T000000-half-written").mkdir()  # no manifest yet
    assert versions(tmp_path) == [only.name]
