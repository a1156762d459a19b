"""``sidstream eval-coldstart``: profile-conditioned cold-start recall on MovieLens-100k.

Users are split (``test_frac`` held out, seeded): the test users' events are never trained on.
Two models of the same architecture are trained on the training users, one with profile and
context tokens (``models/coldstart/train.py``), one without. Each test user is then shown with
their first 0, 1 and 3 events; the target is the next item they consumed (their events shown
are excluded from every ranking). HR@10 and NDCG@10 of:

- popularity (interaction counts of the training users) and popularity within the user's
  segment (age band x gender), the profile-aware floor;
- each model's generative recall (SID beam search, item-head rerank), and the profile model's
  with the profile fields withheld (context kept): what the profile itself adds;
- each model's coarse SID prefixes mapped to SKUs by the bandit
  (``models/coldstart/prefix_recall.py``), with click/order statistics of the training users
  (rating >= 4 is an order, as in the replay);

plus the prefix match rate: how often the coarse prefix of the item consumed next is among the
generated prefixes (and is the first one).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tqdm import tqdm

from models.coldstart.bandit import ItemBandit
from models.coldstart.prefix_recall import ColdStartConfig, ColdStartRecaller, PrefixIndex
from models.coldstart.train import ProfileTrainConfig, new_recaller, profile_windows, train
from models.data.dataset import SeqDataset
from models.data.profile import (
    CONTEXT_FIELDS,
    FIELDS,
    Profile,
    ProfileVocab,
    age_band,
    movielens_profile,
)
from models.recall.data import Split
from models.recall.evaluate import popularity_ranking, rank_metrics
from models.recall.recaller import GenerativeRecaller
from models.sid.tokenizer import load_tokenizer

log = logging.getLogger(__name__)

ORDER_MIN_RATING = 4.0  # as streams/jobs/replay.py


@dataclass
class ColdStartEvalConfig:
    train: ProfileTrainConfig = field(default_factory=ProfileTrainConfig)
    cold: ColdStartConfig = field(default_factory=ColdStartConfig)
    test_frac: float = 0.2
    shown: tuple[int, ...] = (0, 1, 3)
    k: int = 10
    beam: int = 20
    seed: int = 0


class Cases(NamedTuple):
    split: Split  # histories = the events shown, targets = the item consumed next
    codes: list[np.ndarray]  # profile + context codes (context: the target's time)
    segments: list[tuple[int, str]]  # (age band, gender)


def split_users(ds: SeqDataset, frac: float, seed: int) -> tuple[list[int], list[int]]:
    users = np.array(sorted(ds.sequences))
    test = set(np.random.default_rng(seed).permutation(users)[: round(frac * len(users))]
               .tolist())
    return [u for u in users.tolist() if u not in test], sorted(test)


def segment(p: Profile | None) -> tuple[int, str]:
    p = p or Profile()
    return (-1 if p.age is None else age_band(p.age), p.gender or "")


def make_cases(ds: SeqDataset, users: list[int], shown: int, vocab: ProfileVocab,
               profiles: dict[int, Profile]) -> Cases:
    keep = [u for u in users if len(ds.sequences[u]) > shown]
    stamps = ds.timestamps or {}
    hist = [ds.sequences[u][:shown] for u in keep]
    split = Split(np.array(keep, np.int64), hist,
                  np.array([ds.sequences[u][shown] for u in keep], np.int64),
                  [set(h) for h in hist])
    codes = [vocab.encode(profiles.get(u), stamps[u][shown] * 1000 if u in stamps else None)
             for u in keep]
    return Cases(split, codes, [segment(profiles.get(u)) for u in keep])


def train_statistics(ds: SeqDataset, users: list[int], profiles: dict[int, Profile]
                     ) -> tuple[Counter[int], dict[tuple[int, str], Counter[int]], ItemBandit]:
    """Popularity, popularity per segment and the bandit's click/order counts."""
    counts: Counter[int] = Counter()
    by_segment: dict[tuple[int, str], Counter[int]] = {}
    bandit = ItemBandit()
    for u in users:
        seq, ratings = ds.sequences[u], (ds.ratings or {}).get(u)
        counts.update(seq)
        by_segment.setdefault(segment(profiles.get(u)), Counter()).update(seq)
        for j, item in enumerate(seq):
            order = ratings is None or ratings[j] >= ORDER_MIN_RATING
            bandit.update(item, "order" if order else "click")
    return counts, by_segment, bandit


def segment_ranking(by_segment: dict[tuple[int, str], Counter[int]], fallback: Counter[int],
                    cases: Cases, k: int) -> np.ndarray:
    out = np.full((len(cases.codes), k), -1, np.int64)
    for u, (seg, seen) in enumerate(zip(cases.segments, cases.split.seen, strict=True)):
        counts = by_segment.get(seg) or fallback
        row = [i for i, _ in counts.most_common(k + len(seen)) if i not in seen][:k]
        out[u, : len(row)] = row
    return out


def withhold_profile(codes: np.ndarray) -> np.ndarray:
    """Codes with every profile field unknown, the context (hour, weekday) kept."""
    out = codes.copy()
    out[: len(FIELDS) - len(CONTEXT_FIELDS)] = 0
    return out


def match_rates(index: PrefixIndex, nodes: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Share of users whose next item's prefix is among the generated ones / the first."""
    node_of = dict(zip(index.items.tolist(), index.key.tolist(), strict=True))
    true = np.array([node_of.get(int(t), -2) for t in targets])
    return {"match@prefixes": float((nodes == true[:, None]).any(1).mean()),
            "match@1": float((nodes[:, 0] == true).mean())}


def evaluate_case(models: dict[str, GenerativeRecaller], cases: Cases, cfg: ColdStartEvalConfig,
                  stats: tuple[Counter[int], dict[tuple[int, str], Counter[int]], ItemBandit]
                  ) -> dict[str, dict[str, float]]:
    """Every method's HR@10 / NDCG@10 (and match rates) on one history length."""
    counts, by_segment, bandit = stats
    data, k = cases.split, cfg.k
    out = {"popularity": rank_metrics(popularity_ranking(counts, data, k, True), data.targets,
                                      (k,)),
           "segment popularity": rank_metrics(segment_ranking(by_segment, counts, cases, k),
                                              data.targets, (k,))}
    rng = np.random.default_rng(cfg.seed)
    for name, rec in models.items():
        res = rec.recall(data.histories, k=k, beam=cfg.beam, exclude=data.seen,
                         profiles=cases.codes)
        out[f"{name}: generative"] = rank_metrics(res.items, data.targets, (k,))
        if rec.cfg.n_profile:  # ablation: the same model, profile fields withheld
            res = rec.recall(data.histories, k=k, beam=cfg.beam, exclude=data.seen,
                             profiles=[withhold_profile(c) for c in cases.codes])
            out[f"{name}: generative, profile withheld"] = rank_metrics(res.items,
                                                                        data.targets, (k,))
        cold = ColdStartRecaller(rec, cfg.cold)
        mapped, pre = cold.recall(data.histories, cases.codes, bandit, k, data.seen, rng)
        out[f"{name}: prefixes + bandit"] = {
            **rank_metrics(mapped.items, data.targets, (k,)),
            **match_rates(cold.index(), pre.nodes, data.targets)}
    return out


def run_eval_coldstart(ds: SeqDataset, tokenizer: Path, cfg: ColdStartEvalConfig,
                       out_root: Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Train both models, evaluate every history length; optionally save the profile model
    as a recall artifact under ``out_root`` (servable by the worker's cold-start channel)."""
    t0 = time.time()
    rqvae, table, _ = load_tokenizer(tokenizer)
    profiles = {u: movielens_profile(row) for u, row in ds.users.items()}
    train_users, test_users = split_users(ds, cfg.test_frac, cfg.seed)
    vocab = ProfileVocab.build(profiles[u] for u in train_users if u in profiles)
    models: dict[str, GenerativeRecaller] = {}
    losses = {}
    for name, with_profile in (("profile", True), ("no profile", False)):
        tcfg = replace(cfg.train, profile=with_profile)
        rec = new_recaller(rqvae, table, vocab, tcfg)
        win = profile_windows(rec, ds, train_users, vocab, profiles, tcfg.max_hist + 1)
        losses[name] = train(rec, win, tcfg, progress, desc=f"{name}: ")
        models[name] = rec
    stats = train_statistics(ds, train_users, profiles)
    res: dict[str, Any] = {"train_users": len(train_users), "test_users": len(test_users),
                           "losses": losses, "config": asdict(cfg), "shown": {}}
    for shown in tqdm(cfg.shown, desc="evaluate", disable=not progress):
        cases = make_cases(ds, test_users, shown, vocab, profiles)
        res["shown"][str(shown)] = {"users": len(cases.codes),
                                    **evaluate_case(models, cases, cfg, stats)}
    res["wall_s"] = round(time.time() - t0, 1)
    if out_root is not None:
        res["artifact"] = str(models["profile"].save(
            out_root, ds.data_hash(), {"coldstart_eval": {"test_users": test_users}},
            {"coldstart": res["shown"]}))
    return res


def format_results(res: dict[str, Any]) -> str:
    """One row per method, HR@10 / NDCG@10 per history length (+ match rates)."""
    shown = list(res["shown"])
    names = [n for n in res["shown"][shown[0]] if n != "users"]
    head = " | ".join(f"{s} events: HR@10 NDCG@10 (match)" for s in shown)
    lines = [f"{res['test_users']} held-out users ({res['train_users']} trained on); {head}"]
    for name in names:
        cells = []
        for s in shown:
            m = res["shown"][s][name]
            cell = f"{m['recall@10']:.4f} {m['ndcg@10']:.4f}"
            if "match@prefixes" in m:
                cell += f" ({m['match@prefixes']:.3f}/{m['match@1']:.3f})"
            cells.append(cell)
        lines.append(f"  {name:30s} " + " | ".join(cells))
    return "\n".join(lines)
