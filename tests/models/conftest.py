"""Tiny synthetic fixtures for the semantic-ID / generative-recall tests."""

from __future__ import annotations

import pytest
import torch

from models.data.dataset import SeqDataset
from models.recall.recaller import GenerativeRecaller
from tests.fixtures.recall_models import synthetic_dataset, tiny_recaller

torch.set_num_threads(1)


@pytest.fixture
def recaller() -> GenerativeRecaller:
    return tiny_recaller()


@pytest.fixture
def dataset() -> SeqDataset:
    return synthetic_dataset()
