"""``load_recaller`` picks the recaller class by the artifact's kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.artifacts import ArtifactError, write_artifact
from models.recall.recaller import GenerativeRecaller
from models.recall.serving import load_recaller
from models.recall.sidrec_recaller import SIDRecRecaller
from tests.fixtures.recall_models import tiny_recaller, tiny_sidrec


def test_each_kind_loads_as_its_own_recaller(tmp_path: Path) -> None:
    tiny_sidrec().save(tmp_path / "sidrec", "h", {}, {})
    tiny_recaller().save(tmp_path / "recall", "h", {}, {})
    assert isinstance(load_recaller(tmp_path / "sidrec"), SIDRecRecaller)
    assert isinstance(load_recaller(tmp_path / "recall"), GenerativeRecaller)
    write_artifact(tmp_path / "other", "ranker", 3, "h", {}, {}, lambda d: None)
    with pytest.raises(ArtifactError, match="kind 'ranker'"):
        load_recaller(tmp_path / "other")
