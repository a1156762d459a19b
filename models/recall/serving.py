"""What the stream worker needs of a recall artifact, whichever model it holds.

Two kinds serve: ``recall`` (the token-level ``GenerativeRecaller``, models/recall/recaller.py)
and ``sidrec`` (``SIDRecRecaller``, models/recall/sidrec_recaller.py). Both give the
:class:`ServedRecaller` API; :func:`load_recaller` reads the artifact's kind and loads it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from models.artifacts import load_manifest
from models.recall.beam import RecallResult
from models.recall.recaller import GenerativeRecaller
from models.recall.sidrec_recaller import SIDRecRecaller
from models.sid.table import SidTable


class ServedRecaller(Protocol):
    max_hist: int
    table: SidTable

    def recall(self, histories: list[list[int]], k: int = 10, beam: int = 20,
               exclude: list[set[int]] | None = None, batch_size: int = ...,
               keys: Sequence[Hashable] | None = None) -> RecallResult: ...

    def submit(self, histories: list[list[int]], k: int = 10, beam: int = 20,
               exclude: list[set[int]] | None = None, keys: Sequence[Hashable] | None = None,
               batch_size: int = ...) -> Callable[[], RecallResult]: ...

    def add_item(self, item: int, text: str | None = None, vector: np.ndarray | None = None
                 ) -> tuple[int, ...]: ...


def load_recaller(path: Path | str) -> GenerativeRecaller | SIDRecRecaller:
    """The recaller of a recall artifact (version dir or root), by its kind; raises
    ``ArtifactError`` for anything wrong with it."""
    kind = load_manifest(Path(path), verify=False).kind
    if kind == "sidrec":
        return SIDRecRecaller.load(path)
    return GenerativeRecaller.load(path)
