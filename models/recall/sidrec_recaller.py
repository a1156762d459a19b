"""``SIDRecRecaller``: a trained SIDRec with its frozen tokenizer, as the stream serves it.

    rec = SIDRecRecaller.load("artifacts/sidrec")             # LATEST version, validated
    res = rec.recall([[12, 7, 301], [5]], k=10, exclude=[{12, 7, 301}, {5}])
    rec.add_item(99999, "New lipstick | Brand | Beauty > Makeup")  # SID, trie, item table

An artifact (kind ``sidrec``) is self-contained: RQ-VAE, SID table, model weights and the
decoding chosen on validation (``mode``, ``weight``; see ``models/recall/sidrec_search.py``).
A catalogue upsert gives the item a SID through the frozen tokenizer, puts it in the trie (the
beam can generate it) and in the model's item table (the item head scores it by its codes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.artifacts import ArtifactError, Manifest, load_manifest, resolve, write_artifact
from models.recall.beam import Excluder, RecallResult
from models.recall.sasrec import left_pad
from models.recall.sidrec import SIDRec, SIDRecConfig
from models.recall.sidrec_search import MODES, rank
from models.recall.sidrec_stand_in import fit_stand_in
from models.sid.embeddings import encode_texts
from models.sid.rqvae import RQVAE
from models.sid.table import SidTable
from models.sid.tokenizer import (
    known_item_sid,
    load_tokenizer_files,
    new_item_sid,
    save_tokenizer_files,
)
from models.sid.trie import SidTrie

log = logging.getLogger(__name__)

KIND, FORMAT, WEIGHTS = "sidrec", 1, "sidrec.pt"


class SIDRecRecaller:
    def __init__(self, rqvae: RQVAE, table: SidTable, model: SIDRec, mode: str = "hybrid",
                 weight: float = 1.0, n_last_candidates: int = 16) -> None:
        if model.cfg.vocab_sizes != table.vocab_sizes:
            raise ValueError(f"model SID vocab {model.cfg.vocab_sizes} != table "
                             f"{table.vocab_sizes}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.rqvae, self.table, self.model = rqvae.eval(), table, model.eval()
        self.mode, self.weight = mode, weight
        self.new_item_boost = 0.0  # logit bonus of items added after training (item head)
        self.new_item_slots = 0  # of each top-k, at least this many such items (item head)
        self.stand_in_neighbors = 0  # >0: such items' id part from this many warm neighbours
        self.max_hist, self.n_last_candidates = model.cfg.max_len, n_last_candidates
        self.trie = SidTrie.from_sids(table.vocab_sizes, ((s, i) for i, s in table.sids.items()))
        self.manifest: Manifest | None = None  # set by load()
        self._table: torch.Tensor | None = None  # item embeddings, rebuilt after an upsert

    @property
    def n_items(self) -> int:
        return self.trie.n_items

    def item_table(self) -> torch.Tensor:
        if self._table is None:
            with torch.no_grad():
                self._table = self.model.item_table(neighbors=self.stand_in_neighbors)
        return self._table

    def reset_item_table(self) -> None:
        """Drop the cached item embeddings (after an upsert or a weight update)."""
        self._table = None

    def known_items(self, histories: list[list[int]]) -> list[list[int]]:
        """Each history without the items the catalogue does not hold."""
        present = self.model.present.numpy()
        n = len(present)
        return [[i for i in h if 0 < i < n and present[i]] for h in histories]

    @torch.no_grad()
    def states(self, rows: list[list[int]]) -> torch.Tensor:
        """User states [U, d] of ``known_items`` histories: the encoder's output after each
        one's last item."""
        seq = left_pad(rows, self.max_hist, self.model.n_rows - 1)
        return self.model.encode(seq, self.item_table())[:, -1]

    @torch.no_grad()
    def recall(self, histories: list[list[int]], k: int = 10, beam: int = 20,
               exclude: list[set[int]] | None = None, batch_size: int = 256,
               keys: Sequence[Hashable] | None = None) -> RecallResult:
        """Top-``k`` item ids per chronological history (unknown items skipped); never an item
        of ``exclude[u]``; rows padded with -1 / -inf. A history with no known item gets
        nothing. ``keys`` is accepted for API parity with the token-level recaller."""
        if exclude is not None and len(exclude) != len(histories):
            raise ValueError("exclude must have one set per history")
        rows = self.known_items(histories)
        items = np.full((len(rows), k), -1, np.int64)
        scores = np.full((len(rows), k), -np.inf, np.float32)
        for s in range(0, len(rows), batch_size):
            part = rows[s: s + batch_size]
            ex = Excluder(None if exclude is None else exclude[s: s + batch_size], len(part))
            res = rank(self.model, self.trie, self.states(part), self.item_table(), k, beam,
                       self.mode, self.weight, ex, self.new_item_boost,
                       self.new_item_slots if self.mode == "item" else 0)
            items[s: s + len(part)], scores[s: s + len(part)] = res.items, res.scores
        empty = [u for u, r in enumerate(rows) if not r]
        items[empty], scores[empty] = -1, -np.inf
        return RecallResult(items, scores)

    def submit(self, histories: list[list[int]], k: int = 10, beam: int = 20,
               exclude: list[set[int]] | None = None, keys: Sequence[Hashable] | None = None,
               batch_size: int = 256) -> Callable[[], RecallResult]:
        """``recall`` as a job: the returned function gives its result."""
        return lambda: self.recall(histories, k, beam, exclude, batch_size, keys)

    @torch.no_grad()
    def add_item(self, item: int, text: str | None = None, vector: np.ndarray | None = None
                 ) -> tuple[int, ...]:
        """Catalogue upsert: frozen encoder + quantizer -> unique SID -> trie and item table.
        Known items keep their SID. Give the item's text, or a precomputed embedding."""
        if item in self.table.sids:
            return self.table.sids[item]
        if vector is None and self.wants_vectors:
            if not text:
                raise ValueError(f"item {item}: need text or an embedding vector")
            vector = encode_texts([text])[0]
        sid = new_item_sid(self.rqvae, self.table, item, text, vector, self.n_last_candidates)
        self._insert(item, sid, vector)
        return sid

    @property
    def wants_vectors(self) -> bool:
        """Whether items are embedded by their tokenizer vectors too (``content_dim``)."""
        return bool(self.model.cfg.content_dim)

    def add_known(self, item: int, sid: tuple[int, ...], vector: np.ndarray | None = None
                  ) -> None:
        """Insert an item whose SID another copy of this artifact assigned (with the vector it
        was given, for a model that embeds items by it)."""
        if item not in self.table.sids:
            self._insert(item, known_item_sid(self.table, item, sid), vector)

    def _insert(self, item: int, sid: tuple[int, ...], vector: np.ndarray | None) -> None:
        vecs = None if vector is None else torch.as_tensor(np.asarray(vector, np.float32))[None]
        self.model.add_items(torch.tensor([item]), torch.tensor([sid]), trained=False,
                             vectors=vecs)
        self.trie.insert(sid, item)
        self.reset_item_table()

    # ---------------------------------------------------------------- artifact
    def save(self, root: Path, data_hash: str, config: dict[str, Any],
             metrics: dict[str, Any]) -> Path:
        def writer(d: Path) -> None:
            save_tokenizer_files(d, self.rqvae, self.table)
            torch.save(self.model.state_dict(), d / WEIGHTS)

        config = {**config, "model": asdict(self.model.cfg), "mode": self.mode,
                  "weight": self.weight, "new_item_boost": self.new_item_boost,
                  "new_item_slots": self.new_item_slots,
                  "stand_in_neighbors": self.stand_in_neighbors,
                  "rows": self.model.n_rows}
        return write_artifact(root, KIND, FORMAT, data_hash, config, metrics, writer)

    @classmethod
    def load(cls, path: Path | str) -> SIDRecRecaller:
        """Load and validate an artifact (a version dir, or a root with LATEST); raises
        ``ArtifactError`` for missing, corrupt or incompatible ones."""
        man = load_manifest(Path(path), kind=KIND, fmt=FORMAT)
        d = resolve(Path(path))
        try:
            rqvae, table = load_tokenizer_files(d)
            mc = man.config["model"]
            model = SIDRec(SIDRecConfig(**{**mc, "vocab_sizes": tuple(mc["vocab_sizes"])}))
            state = torch.load(d / WEIGHTS, map_location="cpu", weights_only=True)
            rows = int(man.config["rows"])
            model.add_items(torch.tensor([rows - 1]), torch.full((1, model.cfg.levels), -1))
            fit = "stand_in" not in state  # saved before the stand-in existed: fit it now
            state.setdefault("stand_in", model.stand_in)
            model.load_state_dict(state)
            if fit and model.cfg.id_stand_in and model.id_emb is not None:
                fit_stand_in(model)
            rec = cls(rqvae, table, model, str(man.config["mode"]), float(man.config["weight"]))
        except (OSError, KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise ArtifactError(f"{d}: cannot load a SIDRec artifact: {exc}") from exc
        rec.new_item_boost = float(man.config.get("new_item_boost", 0.0))
        rec.new_item_slots = int(man.config.get("new_item_slots", 0))
        rec.stand_in_neighbors = int(man.config.get("stand_in_neighbors", 0))
        rec.manifest = man
        return rec
