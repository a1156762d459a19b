"""Per-user state: the behaviour sequence, the dedup window, the ordered items, the profile.

The state lives in a faust Table (changelogged, so a restarted worker recovers it) as a plain
JSON-able dict; :class:`UserState` is the typed view the pipeline works on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from models.data.profile import Profile
from streams.contracts.events import Event, Id
from streams.contracts.ids import model_item_id


class SeqEvent(NamedTuple):  # a tuple: decoding a 50-event state is ~5x faster than objects
    item_id: Id
    type: str
    ts: int


@dataclass(frozen=True, slots=True)
class StateLimits:
    seq_len: int = 50
    dedup_window: int = 256
    ordered_cap: int = 1000


@dataclass
class UserState:
    user_id: Id
    seq: list[SeqEvent] = field(default_factory=list)  # oldest first, at most seq_len
    recent_ids: list[str] = field(default_factory=list)  # dedup window, oldest first
    ordered: list[Id] = field(default_factory=list)  # ordered items, oldest first
    n_events: int = 0  # events ever applied
    last_ts: int = 0
    profile: Profile | None = None  # from sidstream-users (streams/contracts/profiles.py)
    # next offset to apply per source partition ("topic:partition"): a redelivered record
    # below it is a duplicate however far back a consumer restarts (dedup by event id only
    # reaches back ``dedup_window`` events; it still catches a producer's re-sends)
    consumed: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"user_id": self.user_id,
                               "seq": [[e.item_id, e.type, e.ts] for e in self.seq],
                               "ids": self.recent_ids, "ordered": self.ordered,
                               "n": self.n_events, "last_ts": self.last_ts}
        if self.profile is not None:  # absent otherwise: old states and old readers agree
            out["profile"] = self.profile.to_json()
        if self.consumed:
            out["at"] = self.consumed
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> UserState:
        return cls(user_id=obj["user_id"],
                   seq=list(map(SeqEvent._make, obj.get("seq", []))),
                   recent_ids=list(obj.get("ids", [])), ordered=list(obj.get("ordered", [])),
                   n_events=int(obj.get("n", 0)), last_ts=int(obj.get("last_ts", 0)),
                   profile=Profile.from_json(obj["profile"]) if obj.get("profile") is not None
                   else None,
                   consumed={str(k): int(v) for k, v in obj.get("at", {}).items()})

    def recent_items(self, n: int) -> list[Id]:
        """The ``n`` most recent distinct items, most recent first."""
        out: list[Id] = []
        seen: set[Id] = set()
        for e in reversed(self.seq):
            if e.item_id not in seen:
                seen.add(e.item_id)
                out.append(e.item_id)
                if len(out) == n:
                    break
        return out


@dataclass
class ApplyResult:
    applied: list[Event]
    duplicates: list[Event]


def apply_events(state: UserState, events: Iterable[Event], limits: StateLimits) -> ApplyResult:
    """Append new events to the state, skipping ids already seen (idempotent under redelivery).

    Events are applied in the order given (partition order, which Kafka keeps per key).
    """
    seen = set(state.recent_ids)
    applied: list[Event] = []
    duplicates: list[Event] = []
    for ev in events:
        if ev.event_id in seen:
            duplicates.append(ev)
            continue
        seen.add(ev.event_id)
        state.recent_ids.append(ev.event_id)
        state.seq.append(SeqEvent(ev.item_id, ev.type, ev.ts))
        if ev.type == "order" and ev.item_id not in state.ordered:
            state.ordered.append(ev.item_id)
        state.n_events += 1
        state.last_ts = max(state.last_ts, ev.ts)
        applied.append(ev)
    _trim(state, limits)
    return ApplyResult(applied, duplicates)


def _trim(state: UserState, limits: StateLimits) -> None:
    if len(state.seq) > limits.seq_len:
        del state.seq[: len(state.seq) - limits.seq_len]
    if len(state.recent_ids) > limits.dedup_window:
        del state.recent_ids[: len(state.recent_ids) - limits.dedup_window]
    if len(state.ordered) > limits.ordered_cap:
        del state.ordered[: len(state.ordered) - limits.ordered_cap]


def model_history(state: UserState, max_hist: int) -> tuple[int, ...]:
    """The model's view of a user: item ids the models know, oldest first, last ``max_hist``."""
    ids = [model_item_id(e.item_id) for e in state.seq]
    return tuple(i for i in ids if i is not None)[-max_hist:]
