"""Stream-test fixtures: tiny trained model artifacts (built once per session)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.fixtures.stream_models import build_model_dir


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model dir with one recall and one ranker version (do not modify: copy it)."""
    import torch

    torch.set_num_threads(1)
    return build_model_dir(tmp_path_factory.mktemp("trained"))


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
