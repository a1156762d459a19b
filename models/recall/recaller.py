"""``GenerativeRecaller``: the inference API the stream worker calls, and the recall artifact.

    rec = GenerativeRecaller.load("artifacts/recall")          # LATEST version, validated
    res = rec.recall([[12, 7, 301], [5]], k=10, exclude=[{12, 7, 301}, {5}])
    res.items[u], res.scores[u]                                 # top-k item ids, SID log-probs
    rec.add_item(99999, "New lipstick | Brand | Beauty > Makeup")  # SID + trie insert, in place

An artifact (kind ``recall``) is self-contained: RQ-VAE, SID table, generative weights.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from models.artifacts import ArtifactError, Manifest, load_manifest, resolve, write_artifact
from models.data.profile import ProfileVocab
from models.recall.beam import SEARCH_CHUNK, Encoded, RecallResult, RowMap, encode_prefix, search
from models.recall.data import ItemTokens, make_batch
from models.recall.model import SIDGPT, GenConfig
from models.recall.prefix_cache import PrefixCache
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

KIND, FORMAT = "recall", 1


class GenerativeRecaller:
    def __init__(self, rqvae: RQVAE, table: SidTable, model: SIDGPT, max_hist: int = 20,
                 n_last_candidates: int = 16):
        self.rqvae, self.table, self.model = rqvae.eval(), table, model.eval()
        self.cfg = model.cfg
        if self.cfg.vocab_sizes != table.vocab_sizes:
            raise ValueError(f"model SID vocab {self.cfg.vocab_sizes} != table "
                             f"{table.vocab_sizes}")
        self.max_hist, self.n_last_candidates = max_hist, n_last_candidates
        self.tokens = ItemTokens.build(table.sids, self.cfg)
        self.trie = SidTrie.from_sids(table.vocab_sizes, ((s, i) for i, s in table.sids.items()))
        self.manifest: Manifest | None = None  # set by load()
        # items added later map to row 0 (unknown): no rebuild needed on add_item
        self.rows = RowMap.build(self.tokens.index, self.cfg.n_items)
        self.rerank = 1.0  # weight of the item head's log-prob in the final score (0: off)
        self.prefix_cache: PrefixCache | None = None
        self.steer = 0.0  # beam selection look-ahead by the item head (see models/beam.search)
        self.int8 = False  # set by quantize()
        # field values of a profile model's tokens (models/data/profile.py); None: plain model
        self.profile_vocab: ProfileVocab | None = None

    @property
    def n_items(self) -> int:
        return self.trie.n_items

    def prefixes(self, histories: list[list[int]]) -> list[np.ndarray]:
        """Known items of each history (most recent ``max_hist``) as token-table rows."""
        return [self.tokens.rows(h)[-self.max_hist:] for h in histories]

    def enable_prefix_cache(self, max_tokens: int) -> None:
        """Keep users' encoded histories between calls (``recall(..., keys=...)``)."""
        self.prefix_cache = PrefixCache(max_tokens) if max_tokens > 0 else None

    def quantize(self) -> None:
        """Serve with int8 weights in the transformer's linear layers (dynamic quantization:
        activations quantized per batch, int8 x int8 matmuls, VNNI where the CPU has it). The
        embeddings, hence the tied SID and item heads, stay float32. About 2-3x faster history
        encoding on CPU; the effect on recall is measured by ``eval-recall --int8``. The float
        model is dropped: this is an inference-only recaller from here on."""
        if self.int8:
            return
        with warnings.catch_warnings():  # torch.ao's eager API is deprecated, not yet replaced
            warnings.simplefilter("ignore")
            self.model = cast(SIDGPT, torch.ao.quantization.quantize_dynamic(
                self.model, {torch.nn.Linear}, dtype=torch.qint8))
        self.int8 = True
        if self.prefix_cache is not None:  # encoded with the float weights
            self.prefix_cache = PrefixCache(self.prefix_cache.max_tokens)

    @torch.no_grad()
    def recall(self, histories: list[list[int]], k: int = 10, beam: int = 20,
               exclude: list[set[int]] | None = None, batch_size: int = SEARCH_CHUNK,
               keys: Sequence[Hashable] | None = None,
               profiles: Sequence[np.ndarray] | None = None) -> RecallResult:
        """Top-``k`` item ids per user (chronological histories of item ids; unknown items are
        skipped). Never returns an invalid SID's item or an item of ``exclude[u]``; rows are
        padded with -1 / -inf where fewer than ``k`` items are reachable. With user ``keys``
        and a prefix cache (``enable_prefix_cache``) only new history items are encoded.
        ``profiles[u]``: field codes of a profile model's tokens (``profile_vocab.encode``)."""
        if exclude is not None and len(exclude) != len(histories):
            raise ValueError("exclude must have one set per history")
        rows = self.prefixes(histories)
        # batches of similar history length: far less padding in the prefill
        order = np.argsort([len(r) for r in rows], kind="stable")
        items = np.full((len(rows), k), -1, np.int64)
        scores = np.full((len(rows), k), -np.inf, np.float32)
        for s in range(0, len(rows), batch_size):
            idx = order[s: s + batch_size]
            if keys is not None and self.prefix_cache is not None and not self.cfg.n_profile:
                enc = self.prefix_cache.encode(self.model, self.tokens, [keys[i] for i in idx],
                                               [rows[i] for i in idx])
            else:
                enc = self.encode([rows[i] for i in idx],
                                  None if profiles is None else [profiles[i] for i in idx])
            ex = None if exclude is None else [exclude[i] for i in idx]
            res = search(self.model, self.trie, enc, beam, k, ex,
                         self.rows if self.rerank or self.steer else None, self.rerank,
                         self.steer)
            items[idx], scores[idx] = res.items, res.scores
        return RecallResult(items, scores)

    def submit(self, histories: list[list[int]], k: int = 10, beam: int = 20,
               exclude: list[set[int]] | None = None, keys: Sequence[Hashable] | None = None,
               batch_size: int = SEARCH_CHUNK) -> Callable[[], RecallResult]:
        """``recall`` as a job: the returned function gives its result. Here the search runs
        when it is called; a search process (models/recall/search_process.py) starts it at once."""
        return lambda: self.recall(histories, k, beam, exclude, batch_size, keys)

    @torch.no_grad()
    def encode(self, rows: list[np.ndarray], profiles: Sequence[np.ndarray] | None = None
               ) -> Encoded:
        """Prefill of history rows (``prefixes``), after the profile tokens if the model
        has them (``profiles`` None: every field unknown)."""
        batch, lengths = make_batch(rows, self.tokens, self.cfg, train=False, profiles=profiles)
        return encode_prefix(self.model, batch, lengths)

    @torch.no_grad()
    def add_item(self, item: int, text: str | None = None, vector: np.ndarray | None = None
                 ) -> tuple[int, ...]:
        """Catalogue upsert: frozen encoder + quantizer -> unique SID -> trie, in place.
        Known items keep their SID. Give the item's text, or a precomputed embedding."""
        if item in self.table.sids:
            return self.table.sids[item]
        sid = new_item_sid(self.rqvae, self.table, item, text, vector, self.n_last_candidates)
        self._insert(item, sid)
        log.debug("new item %d -> SID %s", item, sid)
        return sid

    def add_known(self, item: int, sid: tuple[int, ...], vector: np.ndarray | None = None
                  ) -> None:
        """Insert an item whose SID was assigned by another copy of this artifact (a search
        process mirroring its parent's upserts, models/recall/search_process.py). The SID table
        assigns it again from its codes: a copy out of step with the other raises. ``vector``
        is unused: this model embeds items by their SIDs alone."""
        if item not in self.table.sids:
            self._insert(item, known_item_sid(self.table, item, sid))

    def _insert(self, item: int, sid: tuple[int, ...]) -> None:
        """A new item's SID into the trie and the token table (recallable from now on)."""
        self.trie.insert(sid, item)
        self.tokens.add_many({item: sid}, self.cfg)

    # ---------------------------------------------------------------- artifact
    def save(self, root: Path, data_hash: str, config: dict[str, Any],
             metrics: dict[str, Any]) -> Path:
        def writer(d: Path) -> None:
            save_tokenizer_files(d, self.rqvae, self.table)
            torch.save({"config": asdict(self.cfg), "state": self.model.state_dict()},
                       d / "generative.pt")

        config = {**config, "generative": asdict(self.cfg), "max_hist": self.max_hist}
        if self.profile_vocab is not None:
            config["profile_vocab"] = self.profile_vocab.to_json()
        return write_artifact(root, KIND, FORMAT, data_hash, config, metrics, writer)

    @classmethod
    def load(cls, path: Path | str) -> GenerativeRecaller:
        """Load and validate a recall artifact (a version dir, or a root with LATEST);
        raises ``ArtifactError`` for missing, corrupt or incompatible artifacts."""
        man = load_manifest(Path(path), kind=KIND, fmt=FORMAT)
        d = resolve(Path(path))
        try:
            rqvae, table = load_tokenizer_files(d)
            blob = torch.load(d / "generative.pt", map_location="cpu", weights_only=True)
            gcfg = blob["config"]
            cfg = GenConfig(**{**gcfg, "vocab_sizes": tuple(gcfg["vocab_sizes"]),
                               "profile_sizes": tuple(gcfg.get("profile_sizes", ()))})
            model = SIDGPT(cfg)
            model.load_state_dict(blob["state"])
            rec = cls(rqvae, table, model, max_hist=int(man.config.get("max_hist", 20)))
        except (OSError, KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise ArtifactError(f"{d}: cannot load recall artifact: {exc}") from exc
        rec.rerank = float(man.config.get("item_weight", 1.0))
        rec.steer = float(man.config.get("steer", 0.0))
        if "profile_vocab" in man.config:
            rec.profile_vocab = ProfileVocab.from_json(man.config["profile_vocab"])
        sizes = rec.profile_vocab.sizes if rec.profile_vocab is not None else ()
        if sizes != rec.cfg.profile_sizes:
            raise ArtifactError(f"{d}: profile vocabulary {sizes} != model's "
                                f"{rec.cfg.profile_sizes}")
        rec.manifest = man
        return rec
