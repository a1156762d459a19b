"""``sidstream promote CHALLENGER``: guarded model promotion (champion / challenger).

The challenger (a recall or ranker artifact version) and the champion (the version the workers
serve: ``<root>/SERVING``, or before any promotion the newest other version) each build the lists
the stream would build, through the same :class:`streams.pipeline.batch.Pipeline`, for a replay of
the most recent events of a data set: every event is scored against the list made from the user's
history before it. Click rate and order rate are the hit rates@k over click and over order events.
The rule: promote only if the order rate rises and the click rate drops by less than 10 %, and
only on figures out of sample: both versions must have been trained on the data before the
replayed window (``--holdout-events N`` with N >= ``--events``, their manifests' data hashes those
of the data set without its last N interactions); a version that saw the window is refused. The
decision and its figures go to ``<root>/promotions/<version>.json``; a promotion moves
``<root>/SERVING``, which workers follow (``LATEST``, written by training, is only followed while no
version has ever been promoted).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from models.artifacts import (
    SERVING,
    ArtifactError,
    Manifest,
    latest,
    load_manifest,
    read_pointer,
    set_pointer,
    versions,
)
from models.data.dataset import SeqDataset, load_dataset
from models.data.timeline import before_window, interactions
from streams.channels.covisit import CoVisitation
from streams.channels.popularity import DecayedPopularity
from streams.contracts.events import Event
from streams.metrics import Metrics
from streams.pipeline.batch import Pipeline
from streams.pipeline.model_set import ModelSet, with_model
from streams.pipeline.state import UserState, apply_events
from streams.runtime.model_watcher import ModelWatcher
from streams.settings import Settings

log = logging.getLogger(__name__)

MAX_CLICK_DROP = 0.10


@dataclass(frozen=True)
class PromoteConfig:
    challenger: Path
    data: str = "movielens"
    events: int = 5000  # most recent events replayed
    k: int = 10
    dry_run: bool = False


@dataclass
class ArmResult:
    version: str
    click_rate: float
    order_rate: float
    clicks: int
    orders: int


def kind_of(directory: Path) -> str:
    man = json.loads((directory / "manifest.json").read_text())
    if man.get("kind") in ("recall", "sidrec"):  # the token-level model or SIDRec
        return "recall"
    if man.get("format") == "sidstream-ranker":
        return "ranker"
    raise ValueError(f"{directory}: not a recall or ranker artifact")


def champion_of(root: Path, challenger: str) -> str | None:
    serving = read_pointer(root, SERVING)
    if serving and serving != challenger:
        return serving
    others = [v for v in versions(root) if v != challenger and v != latest(root)]
    return others[0] if others else None


def holdout_events(man: Manifest) -> int:
    """How many of the data set's last interactions the artifact was trained without."""
    train = man.config.get("train")
    nested = train.get("holdout_events", 0) if isinstance(train, dict) else 0
    return int(man.extra.get("holdout_events", nested) or 0)


def in_sample(directory: Path, ds: SeqDataset, window: int) -> str:
    """Why ``directory``'s figures on the last ``window`` interactions of ``ds`` would be in
    sample ("" when they are not): trained on them, or on other data."""
    try:
        man = load_manifest(directory, verify=False)
    except ArtifactError as exc:
        return str(exc)
    n = holdout_events(man)
    if n < window:
        return (f"{directory.name} was trained on the replayed window (it held out {n} of the "
                f"last {window} events: train with --holdout-events {window})")
    if man.data_hash != before_window(ds, n).data_hash():
        return f"{directory.name} was trained on other data than {ds.name} before its last {n}"
    return ""


def decide(champ: ArmResult | None, chall: ArmResult) -> tuple[bool, str]:
    if champ is None:
        return True, "no champion: the first version is promoted"
    if chall.order_rate <= champ.order_rate:
        return False, (f"order rate {chall.order_rate:.4f} does not rise above "
                       f"{champ.order_rate:.4f}")
    floor = (1 - MAX_CLICK_DROP) * champ.click_rate
    if chall.clicks and chall.click_rate < floor:
        return False, f"click rate {chall.click_rate:.4f} drops below {floor:.4f} (-10%)"
    return True, (f"order rate {champ.order_rate:.4f} -> {chall.order_rate:.4f}, click rate "
                  f"{champ.click_rate:.4f} -> {chall.click_rate:.4f}")


def run_promote(cfg: PromoteConfig, settings: Settings | None = None) -> dict[str, Any]:
    challenger = cfg.challenger.resolve()
    root, version = challenger.parent, challenger.name
    kind = kind_of(challenger)
    # an offline replay on one thread: no event loop to keep the search away from
    settings = (settings or Settings.from_env()).with_values(
        model_dir=root.parent, debounce_ms=0, model_process=False)
    watcher = ModelWatcher(settings, Metrics())
    serving = watcher.load_initial()  # the other kind as the workers serve it
    champ_version = champion_of(root, version)
    arms = {"challenger": _with(watcher, serving, kind, version)}
    if champ_version:
        arms["champion"] = _with(watcher, serving, kind, champ_version)
    ds = load_dataset(cfg.data)
    replay = _replay(ds, cfg.events)
    results = {name: _evaluate(models, replay, settings, cfg.k, v)
               for (name, (models, v)) in arms.items()}
    ok, reason = decide(results.get("champion"), results["challenger"])
    leaks = {name: why for name, v in (("challenger", version), ("champion", champ_version))
             if v and (why := in_sample(root / v, ds, cfg.events))}
    if leaks:
        ok, reason = False, "in sample: " + "; ".join(leaks.values())
    doc = {"kind": kind, "challenger_version": version, "champion_version": champ_version,
           "promoted": ok, "out_of_sample": not leaks,
           "reason": reason, "rule": "order rate rises and click rate drops by < 10%",
           "data": cfg.data, "events": cfg.events, "k": cfg.k,
           "decided": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           **{name: asdict(r) for name, r in results.items()}}
    if not cfg.dry_run:
        (root / "promotions").mkdir(exist_ok=True)
        (root / "promotions" / f"{version}.json").write_text(json.dumps(doc, indent=2))
        if ok:
            set_pointer(root, SERVING, version)
    log.info("promote %s %s: %s (%s)", kind, version, "PROMOTED" if ok else "kept champion",
             reason)
    return doc


def _with(watcher: ModelWatcher, serving: ModelSet, kind: str, version: str
          ) -> tuple[ModelSet, str]:
    obj = watcher.try_load(kind, version)
    if obj is None:
        raise ValueError(f"{kind} artifact {version} does not load (see the log)")
    return with_model(serving, kind, obj, version), version


def _replay(ds: SeqDataset, window: int) -> tuple[list[Any], list[Any]]:
    """(events before the window, the window) in replay order."""
    order = interactions(ds)
    cut = max(0, len(order) - window)
    return order[:cut], order[cut:]


def _evaluate(models: ModelSet, replay: tuple[list[Any], list[Any]], settings: Settings,
              k: int, version: str) -> ArmResult:
    before, window = replay
    now = [0.0]  # replay time: one second per event
    pipe = Pipeline(settings.with_values(rec_size=k), CoVisitation(),
                    DecayedPopularity(settings.channels.popularity_half_life_s), Metrics(),
                    clock=lambda: now[0])
    pipe.models = models
    states: dict[str, UserState] = {}
    for ts, it in enumerate(before):
        _apply(pipe, states, it, ts)
    hits = {"click": 0, "order": 0}
    seen = {"click": 0, "order": 0}
    batch: list[Any] = []
    for ts, it in enumerate(window, start=len(before)):
        if any(b.user_id == it.user_id for b in batch) or len(batch) >= 256:
            now[0] = float(ts)
            _score(pipe, states, batch, hits, seen)
            for j, b in enumerate(batch):
                _apply(pipe, states, b, ts - len(batch) + j)
            batch = []
        batch.append(it)
    now[0] = float(len(before) + len(window))
    _score(pipe, states, batch, hits, seen)
    return ArmResult(version, hits["click"] / max(seen["click"], 1),
                     hits["order"] / max(seen["order"], 1), seen["click"], seen["order"])


def _apply(pipe: Pipeline, states: dict[str, UserState], it: Any, ts: int) -> None:
    """One replayed interaction into the user's state and the cheap channels, as the stream
    applies an event (``apply_events`` + ``Pipeline.learn``)."""
    st = states.setdefault(str(it.user_id), UserState(it.user_id))
    ev = Event(f"{it.user_id}:{it.position}", it.user_id, it.item_id, it.type, ts * 1000, None)
    before = [e.item_id for e in st.seq]
    apply_events(st, [ev], pipe.state_limits)
    pipe.learn(before, ev)


def _score(pipe: Pipeline, states: dict[str, UserState], batch: list[Any],
           hits: dict[str, int], seen: dict[str, int]) -> None:
    if not batch:
        return
    todo = {str(b.user_id): states.get(str(b.user_id)) or UserState(b.user_id) for b in batch}
    lists = pipe.recommend_many(todo)
    for b in batch:
        kind = "order" if b.type == "order" else "click"
        seen[kind] += 1
        hits[kind] += b.item_id in {c.item_id for c in lists[str(b.user_id)]}
