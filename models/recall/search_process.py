"""The beam search of a recall artifact in a child process of its own.

A stream worker runs faust's event loop and consumer thread next to the model work. A search is
hundreds of small torch operations, each of which gives up Python's GIL and must win it back:
next to a busy Python thread a search in a thread ran 27x slower (1.7 -> 46 ms per user;
``sidstream bench recall`` reports it), and the worker stayed at one core however the work was
split between threads. In a child process the search has its own GIL and a core to itself.

    rec = RemoteRecaller.start(GenerativeRecaller.load(path), path, int8=True, cache_tokens=...)
    # or RemoteSIDRec.start(SIDRecRecaller.load(path), path, int8=False, cache_tokens=0)
    rec.recall(histories, k=50, exclude=..., keys=...)   # in the child
    rec.add_item(item, vector=v)                          # here (SID), then the same SID there
    rec.close()                                           # also when the object is collected

Everything but ``recall`` (SID table, trie, tokenizer, cold-start encoding) stays in the local
copy, which the parent keeps in step: an upsert gets its SID here and the child inserts that SID,
in the order of the pipe, so a recall sent after an upsert sees the item. If the child dies,
``recall`` raises ``SearchProcessError`` (the micro-batch fails and is redelivered). Each answer
carries the child's prefix-cache size, ``(entries, tokens, bytes)``, kept in ``cache_stats``
(the worker's memory gauges read it: the child's heap is not the worker's).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import threading
import weakref
from collections.abc import Callable, Hashable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.heap import settle_heap
from models.recall.beam import SEARCH_CHUNK, RecallResult
from models.recall.recaller import GenerativeRecaller
from models.recall.serving import load_recaller
from models.recall.sidrec_recaller import SIDRecRecaller
from models.sid.embeddings import encode_texts

log = logging.getLogger(__name__)

START_TIMEOUT_S = 120.0


class SearchProcessError(RuntimeError):
    pass


class _InChild:
    """What makes a recaller's ``recall`` run in a child process: mixed in before the model's
    own class (:class:`RemoteRecaller`, :class:`RemoteSIDRec`), whose methods stay the local
    copy's."""

    conn: Connection
    proc: Any  # multiprocessing.Process (spawn context)
    _send_lock: threading.Lock
    _recv_lock: threading.Lock
    _sent: int  # tickets handed out (recall messages sent)
    _received: int  # replies read from the pipe
    _replies: dict[int, tuple[Any, ...]]  # read, not yet claimed
    _outbox: queue.SimpleQueue[tuple[Any, ...] | None]  # to the child, in order (None: stop)
    _status: dict[str, str]  # "failed": why sending failed ("" while it works)
    cache_stats: tuple[int, int, int]  # the child's prefix cache at its last answer

    @classmethod
    def start(cls, local: Any, path: Path, *, int8: bool, cache_tokens: int,
              threads: int = 1) -> Any:
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
        if isinstance(rec, GenerativeRecaller):
            rec.prefix_cache = None
        rec.conn, rec.proc = parent, proc
        rec._send_lock, rec._recv_lock = threading.Lock(), threading.Lock()
        rec._sent = rec._received = 0
        rec._replies, rec._status = {}, {"failed": ""}
        rec.cache_stats = (0, 0, 0)
        rec._outbox = queue.SimpleQueue()
        threading.Thread(target=_sender, args=(rec._outbox, parent, rec._status, proc.pid),
                         name="sidstream-search-send", daemon=True).start()
        weakref.finalize(rec, _stop, rec._outbox, proc, parent)
        log.info("search process %d serves %s", proc.pid, path)
        return rec

    def recall(self, histories: list[list[int]], k: int = 10, beam: int = 20,
               exclude: list[set[int]] | None = None, batch_size: int = SEARCH_CHUNK,
               keys: Sequence[Hashable] | None = None,
               profiles: Sequence[np.ndarray] | None = None) -> RecallResult:
        # cold-start encodings are local (see streams/channels/coldstart.py)
        if profiles is not None:
            return super().recall(  # type: ignore[misc]
                histories, k, beam, exclude, batch_size, keys, profiles)
        return self.submit(histories, k, beam, exclude, keys, batch_size)()

    def submit(self, histories: list[list[int]], k: int = 10, beam: int = 20,
               exclude: list[set[int]] | None = None, keys: Sequence[Hashable] | None = None,
               batch_size: int = SEARCH_CHUNK) -> Callable[[], RecallResult]:
        """Send the search now; the returned function waits for its result. Several may be
        outstanding (the child answers in order), e.g. the next micro-batch's search while
        this process ranks the last one."""
        ticket = self._send(("recall", histories, k, beam, exclude, batch_size, keys))
        return lambda: self._reply(ticket)

    def add_item(self, item: int, text: str | None = None, vector: np.ndarray | None = None
                 ) -> tuple[int, ...]:
        known = item in self.table.sids  # type: ignore[attr-defined]
        if not known and vector is None and text and getattr(self, "wants_vectors", False):
            vector = encode_texts([text])[0]  # once, for both copies
        sid: tuple[int, ...] = super().add_item(item, text, vector)  # type: ignore[misc]
        if not known:
            self._send(("add", item, sid, vector))
        return sid

    def close(self) -> None:
        _stop(self._outbox, self.proc, self.conn)

    def _send(self, msg: tuple[Any, ...]) -> int:
        """Queue a message for the sender thread (never blocks on a full pipe while the child
        is busy); returns the ticket of a message that gets a reply (-1: none)."""
        with self._send_lock:
            if self._status["failed"]:
                raise SearchProcessError(self._status["failed"])
            self._outbox.put(msg)
            if msg[0] != "recall":
                return -1
            self._sent += 1
            return self._sent - 1

    def _reply(self, ticket: int) -> RecallResult:
        with self._recv_lock:
            while ticket not in self._replies:
                try:
                    self._replies[self._received] = self.conn.recv()
                except (EOFError, OSError) as exc:
                    raise SearchProcessError(f"search process {self.proc.pid} died: {exc}"
                                             ) from exc
                self._received += 1
            tag, *rest = self._replies.pop(ticket)
        if tag != "ok":
            raise SearchProcessError(f"search process {self.proc.pid}: {rest[0]}")
        items, scores, cache = rest  # the child's answer always carries its cache's size
        self.cache_stats = tuple(cache)
        return RecallResult(items, scores)


class RemoteRecaller(_InChild, GenerativeRecaller):
    """A token-level :class:`GenerativeRecaller` whose ``recall`` runs in a child process."""


class RemoteSIDRec(_InChild, SIDRecRecaller):
    """A :class:`SIDRecRecaller` whose ``recall`` runs in a child process: its encoder pass and
    item-head scoring take a core of their own instead of the worker's GIL."""


def _sender(outbox: queue.SimpleQueue[tuple[Any, ...] | None], conn: Connection,
            status: dict[str, str], pid: int) -> None:
    """The one writer of the pipe (a thread; it holds no reference to the recaller, so a
    swapped-out recaller is collected and its child stopped)."""
    while (msg := outbox.get()) is not None:
        try:
            conn.send(msg)
        except (OSError, ValueError) as exc:
            status["failed"] = f"search process {pid} is gone: {exc}"
            return


def _stop(outbox: queue.SimpleQueue[tuple[Any, ...] | None], proc: Any, conn: Connection
          ) -> None:
    outbox.put(("stop",))
    outbox.put(None)
    proc.join(5)
    if proc.is_alive():
        proc.kill()
        proc.join(1)
    conn.close()


def _serve(conn: Connection, path: str, int8: bool, cache_tokens: int, threads: int) -> None:
    """The child: load, then answer messages in order until "stop" or the parent is gone."""

    torch.set_num_threads(max(1, threads))
    try:
        rec = load_recaller(path)
        if isinstance(rec, GenerativeRecaller):  # SIDRec serves float32, without a cache
            if int8:
                rec.quantize()
            rec.enable_prefix_cache(cache_tokens)
    except Exception as exc:  # reported to the parent, which refuses the artifact
        conn.send(("error", repr(exc)))
        return
    settle_heap()
    conn.send(("ready", rec.n_items))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the parent died
            return
        if msg[0] == "stop":
            return
        if msg[0] == "add":
            rec.add_known(msg[1], msg[2], msg[3])
            continue
        try:
            histories, k, beam, exclude, batch_size, keys = msg[1:]
            res = rec.recall(histories, k, beam, exclude, batch_size, keys)
            cache = getattr(rec, "prefix_cache", None)
            conn.send(("ok", res.items, res.scores, cache.stats() if cache else (0, 0, 0)))
        except Exception as exc:  # the parent raises it for this micro-batch
            conn.send(("error", repr(exc)))
