"""The beam search of a recall artifact in a child process of its own.

A stream worker runs faust's event loop and consumer thread next to the model work. A search is
hundreds of small torch operations, each of which gives up Python's GIL and must win it back:
next to a busy Python thread a search in a thread ran 27x slower (1.7 -> 46 ms per user;
``sidstream bench recall`` reports it), and the worker stayed at one core however the work was
split between threads. In a child process the search has its own GIL and a core to itself.

    rec = RemoteRecaller.start(GenerativeRecaller.load(path), path, int8=True, cache_tokens=...)
    rec.recall(histories, k=50, exclude=..., keys=...)   # in the child
    rec.add_item(item, vector=v)                          # here (SID), then the same SID there
    rec.close()                                           # also when the object is collected

Everything but ``recall`` (SID table, trie, tokenizer, cold-start encoding) stays in the local
copy, which the parent keeps in step: an upsert gets its SID here and the child inserts that SID,
in the order of the pipe, so a recall sent after an upsert sees the item. If the child dies,
``recall`` raises ``SearchProcessError`` (the micro-batch fails and is redelivered).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import weakref
from collections.abc import Hashable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from models.beam import SEARCH_CHUNK, RecallResult
from models.recaller import GenerativeRecaller

log = logging.getLogger(__name__)

START_TIMEOUT_S = 120.0


class SearchProcessError(RuntimeError):
    pass


class RemoteRecaller(GenerativeRecaller):
    """A :class:`GenerativeRecaller` whose ``recall`` runs in a child process."""

    conn: Connection
    proc: Any  # multiprocessing.Process (spawn context)

    @classmethod
    def start(cls, local: GenerativeRecaller, path: Path, int8: bool, cache_tokens: int,
              threads: int = 1) -> RemoteRecaller:
        """Spawn the child on the artifact version ``path`` (the one ``local`` was loaded from)
        and wait until it serves. The local copy gives up its prefix cache (the child's is used)."""
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(child, str(path), int8, cache_tokens, threads),
                           name="sidstream-search", daemon=True)
        proc.start()
        child.close()
        if not parent.poll(START_TIMEOUT_S):
            proc.kill()
            raise SearchProcessError(f"search process for {path} did not start")
        tag, detail = parent.recv()
        if tag != "ready":
            proc.join(5)
            raise SearchProcessError(f"search process for {path}: {detail}")
        rec = cls.__new__(cls)
        rec.__dict__.update(local.__dict__)
        rec.prefix_cache = None
        rec.conn, rec.proc = parent, proc
        weakref.finalize(rec, _stop, parent, proc)
        log.info("search process %d serves %s", proc.pid, path)
        return rec

    def recall(self, histories: list[list[int]], k: int = 10, beam: int = 20,
               exclude: list[set[int]] | None = None, batch_size: int = SEARCH_CHUNK,
               keys: Sequence[Hashable] | None = None,
               profiles: Sequence[np.ndarray] | None = None) -> RecallResult:
        if profiles is not None:  # cold-start encodings are local (see streams/coldstart.py)
            return super().recall(histories, k, beam, exclude, batch_size, keys, profiles)
        reply = self._call(("recall", histories, k, beam, exclude, batch_size, keys))
        return RecallResult(reply[0], reply[1])

    def add_item(self, item: int, text: str | None = None, vector: np.ndarray | None = None
                 ) -> tuple[int, ...]:
        known = item in self.table.sids
        sid = super().add_item(item, text, vector)
        if not known:
            self._send(("add", item, sid))
        return sid

    def close(self) -> None:
        _stop(self.conn, self.proc)

    def _send(self, msg: tuple[Any, ...]) -> None:
        try:
            self.conn.send(msg)
        except (OSError, ValueError) as exc:
            raise SearchProcessError(f"search process {self.proc.pid} is gone: {exc}") from exc

    def _call(self, msg: tuple[Any, ...]) -> tuple[Any, ...]:
        self._send(msg)
        try:
            tag, *rest = self.conn.recv()
        except (EOFError, OSError) as exc:
            raise SearchProcessError(f"search process {self.proc.pid} died: {exc}") from exc
        if tag != "ok":
            raise SearchProcessError(f"search process {self.proc.pid}: {rest[0]}")
        return tuple(rest)


def _stop(conn: Connection, proc: Any) -> None:
    with contextlib.suppress(OSError, ValueError):
        conn.send(("stop",))
    proc.join(5)
    if proc.is_alive():
        proc.kill()
    conn.close()


def _serve(conn: Connection, path: str, int8: bool, cache_tokens: int, threads: int) -> None:
    """The child: load, then answer messages in order until "stop" or the parent is gone."""
    import torch

    torch.set_num_threads(max(1, threads))
    try:
        rec = GenerativeRecaller.load(path)
        if int8:
            rec.quantize()
        rec.enable_prefix_cache(cache_tokens)
    except Exception as exc:  # reported to the parent, which refuses the artifact
        conn.send(("error", repr(exc)))
        return
    conn.send(("ready", rec.n_items))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the parent died
            return
        if msg[0] == "stop":
            return
        if msg[0] == "add":
            rec.add_known(msg[1], msg[2])
            continue
        try:
            histories, k, beam, exclude, batch_size, keys = msg[1:]
            res = rec.recall(histories, k, beam, exclude, batch_size, keys)
            conn.send(("ok", res.items, res.scores))
        except Exception as exc:  # the parent raises it for this micro-batch
            conn.send(("error", repr(exc)))
