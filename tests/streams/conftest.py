"""Stream-test fixtures: tiny trained model artifacts (built once per session; the
``trained_models`` they copy lives in tests/conftest.py, shared with tests/infra)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture()
def model_dir(trained_models: Path, tmp_path: Path) -> Path:
    """A private copy of ``trained_models`` a test may publish versions into."""
    return Path(shutil.copytree(trained_models, tmp_path / "models"))


@pytest.fixture(scope="session")
def profile_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model dir with one profile-conditioned recall version (no ranker; do not modify)."""
    import torch

    from tests.fixtures.profile_models import build_profile_model_dir

    torch.set_num_threads(1)
    return build_profile_model_dir(tmp_path_factory.mktemp("profile-trained"))
