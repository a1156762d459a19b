"""``sidstream eval-recall | eval-coldstart``: quality of recall artifacts."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

from streams.cli.common import add_common, setup_torch

log = logging.getLogger(__name__)


def _load_recaller(args: argparse.Namespace) -> Any:
    """The artifact's recaller by its kind, with the command line's decoding overrides."""
    # lazy: torch and the models load only when the command runs
    from models.artifacts import load_manifest
    from models.recall.sasrec import SASRecRecaller
    from models.recall.serving import load_recaller
    from models.recall.sidrec_recaller import SIDRecRecaller

    if load_manifest(Path(args.artifact), verify=False).kind == "sasrec":
        return SASRecRecaller.load(args.artifact)  # the baseline: not a served kind
    gen = load_recaller(args.artifact)
    if isinstance(gen, SIDRecRecaller):
        gen.mode = args.mode or gen.mode
        gen.weight = gen.weight if args.item_weight is None else args.item_weight
        if args.new_item_boost is not None:
            gen.new_item_boost = args.new_item_boost
        if args.new_item_slots is not None:
            gen.new_item_slots = args.new_item_slots
        return gen
    if args.item_weight is not None:
        gen.rerank = args.item_weight
    if args.steer is not None:
        gen.steer = args.steer
    if args.int8:
        gen.quantize()
    return gen


def _decoding(rec: Any) -> dict[str, Any]:
    """How the recaller ranks, for the results file and its name."""
    if hasattr(rec, "mode"):
        return {"mode": rec.mode, "weight": rec.weight, "new_item_boost": rec.new_item_boost,
                "new_item_slots": rec.new_item_slots}
    if hasattr(rec, "rerank"):
        return {"rerank": rec.rerank, "steer": rec.steer, "int8": rec.int8}
    return {}


def _cmd_eval_recall(args: argparse.Namespace) -> int:
    setup_torch(args)
    # lazy: torch and the models load only when the command runs
    from models.artifacts import resolve, update_metrics
    from models.data.dataset import load_dataset
    from models.recall.data import leave_one_out
    from models.recall.evaluate import evaluate, format_metrics
    from models.recall.sidrec_eval import cold_items

    rec = _load_recaller(args)
    ds = load_dataset(args.data)
    data = leave_one_out(ds, args.split, rec.max_hist)
    t0 = time.time()
    res = evaluate(rec, ds, data, args.split, args.beam)
    res["eval_seconds"] = round(time.time() - t0, 1)
    d = _decoding(rec)
    res.update(d)
    manifest = getattr(rec, "manifest", None)
    held_out = set(manifest.config.get("held_out", [])) if manifest is not None else set()
    if held_out:  # trained without them: add them through the catalogue path, then score
        valid = leave_one_out(ds, "valid", rec.max_hist)  # where new-item scoring is chosen
        res["cold_items"] = cold_items(rec, ds, valid, data, held_out, args.beam,
                                       args.cold_tolerance)
    elif args.cold_reference:
        res["cold_reference"] = _cold_reference(rec, ds, data, args, manifest)
    print(format_metrics({k: v for k, v in res.items()
                          if k not in ("cold_items", "cold_reference")}))
    if held_out:
        cold = res["cold_items"]
        print(f"cold items: {cold['added']} of {cold['held_out_items']} held-out items added, "
              f"{cold['cold_target_users']} users with a cold target: R@10 "
              f"{cold['cold'].get('recall@10', float('nan')):.4f} N@10 "
              f"{cold['cold'].get('ndcg@10', float('nan')):.4f}; all users R@10 "
              f"{cold['all']['recall@10']:.4f} N@10 {cold['all']['ndcg@10']:.4f}")
    tag = (f"-{d['mode']}-w{d['weight']:g}-b{d['new_item_boost']:g}-s{d['new_item_slots']}"
           if "mode" in d else
           f"-w{d['rerank']:g}-s{d['steer']:g}{'-int8' if d['int8'] else ''}" if d else "")
    name = f"eval-{args.split}-beam{args.beam}{tag}.json"
    out = Path(args.json) if args.json else resolve(Path(args.artifact)) / name
    out.write_text(json.dumps(res, indent=2))
    if args.update_manifest:
        update_metrics(resolve(Path(args.artifact)), {f"eval_{args.split}": res})
    log.info("metrics written to %s", out)
    return 0


def _cold_reference(rec: Any, ds: Any, data: Any, args: argparse.Namespace, manifest: Any
                    ) -> dict[str, Any]:
    """This warm-trained artifact on the users whose target a ``--cold-items`` run of the same
    seed would hold out: what a model that saw those items reaches on the cold protocol's
    cold-target users."""
    # lazy: torch and the models load only when the command runs
    from models.recall.sidrec_eval import held_out_reference
    from models.recall.sidrec_train import held_out_items

    seed = int(manifest.config.get("seed", 0)) if manifest is not None else 0
    ref = held_out_reference(rec, data, held_out_items(ds, args.cold_reference, seed), args.beam)
    print(f"cold reference (seed {seed}, share {args.cold_reference:g}): "
          f"{ref['cold_target_users']} users whose target a cold run holds out: R@10 "
          f"{ref['cold'].get('recall@10', float('nan')):.4f} N@10 "
          f"{ref['cold'].get('ndcg@10', float('nan')):.4f}; the other users R@10 "
          f"{ref['warm'].get('recall@10', float('nan')):.4f}")
    return {"share": args.cold_reference, "seed": seed, **ref}


def _cmd_eval_coldstart(args: argparse.Namespace) -> int:
    setup_torch(args)
    # lazy: torch and the models load only when the command runs
    from models.coldstart.evaluate import ColdStartEvalConfig, format_results, run_eval_coldstart
    from models.coldstart.prefix_recall import ColdStartConfig
    from models.coldstart.train import ProfileTrainConfig
    from models.data.dataset import load_dataset
    from models.sid.rqvae import RQVAEConfig
    from models.sid.train import TokenizerTrainConfig, run_train_tokenizer

    ds, out = load_dataset(args.data), Path(args.out)
    tok = Path(args.tokenizer) if args.tokenizer else run_train_tokenizer(
        ds, out / "tokenizer", TokenizerTrainConfig(
            rqvae=RQVAEConfig(codebook_size=args.codebook_size), epochs=150, seed=args.seed))
    cfg = ColdStartEvalConfig(
        train=ProfileTrainConfig(epochs=args.epochs, seed=args.seed),
        cold=ColdStartConfig(levels=args.levels, prefixes=args.prefixes, epsilon=args.epsilon,
                             bandit=args.bandit),
        test_frac=args.test_frac, seed=args.seed)
    res = run_eval_coldstart(ds, tok, cfg, out / "recall")
    (out / "eval-coldstart.json").write_text(json.dumps(res, indent=2))
    print(format_results(res))
    one = res["shown"][str(cfg.shown[0])]
    print(f"cold start, 0 events: HR@10 profile {one['profile: generative']['recall@10']:.4f}"
          f" / no profile {one['no profile: generative']['recall@10']:.4f} / popularity "
          f"{one['popularity']['recall@10']:.4f}; {res['test_users']} held-out users, "
          f"{res['wall_s']:.0f} s -> {out / 'eval-coldstart.json'}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-recall", help="Recall/NDCG@5/10 of a recall artifact + popularity")
    add_common(p)
    p.add_argument("--artifact", default="artifacts/recall")
    p.add_argument("--split", choices=("valid", "test"), default="test")
    p.add_argument("--beam", type=int, default=20)
    p.add_argument("--json", default=None, help="output file (default: <artifact>/eval-*.json)")
    p.add_argument("--update-manifest", action="store_true")
    p.add_argument("--int8", action="store_true", help="int8 linear layers, as the worker serves")
    p.add_argument("--item-weight", type=float, default=None,
                   help="weight of the item head's log-prob in the ranking (0: SID only; "
                   "default: the weight tuned on validation, stored in the artifact)")
    p.add_argument("--steer", type=float, default=None,
                   help="beam look-ahead by the item head (0: off; default: the artifact's)")
    p.add_argument("--mode", choices=("hybrid", "beam", "item", "rerank"), default=None,
                   help="SIDRec artifacts: decoding mode (default: the one chosen on validation;"
                        " rerank: the beam's items and the new ones by the item head, LIGER's)")
    p.add_argument("--new-item-boost", type=float, default=None,
                   help="SIDRec artifacts: logit bonus of items added after training (the "
                        "held-out cold items; default: the artifact's, 0)")
    p.add_argument("--new-item-slots", type=int, default=None,
                   help="SIDRec artifacts, item head: at least this many items added after "
                        "training in each top-k (default: the artifact's, 0)")
    p.add_argument("--cold-tolerance", type=float, default=0.0,
                   help="artifacts with held-out items: share of all-user validation R@10 given "
                        "up for new items (new-item scoring with the best cold-target R@10 "
                        "within it; 0: the best all-user R@10)")
    p.add_argument("--cold-reference", type=float, default=0.0, metavar="SHARE",
                   help="artifacts trained on every item: also report R@K/N@K on the users "
                        "whose target a --cold-items SHARE run of the artifact's seed holds "
                        "out (the bar for its cold-target figures)")
    p.set_defaults(func=_cmd_eval_recall)

    p = sub.add_parser("eval-coldstart", help="cold-start recall from user profiles on "
                       "MovieLens-100k: profile model vs no-profile model vs popularity")
    add_common(p)
    p.set_defaults(data="movielens")
    p.add_argument("--out", default="artifacts/coldstart",
                   help="tokenizer, profile recall artifact and eval-coldstart.json go here")
    p.add_argument("--tokenizer", default=None, help="tokenizer artifact (default: train one)")
    p.add_argument("--codebook-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--test-frac", type=float, default=0.2)
    p.add_argument("--levels", type=int, default=1, help="SID levels of a generated prefix")
    p.add_argument("--prefixes", type=int, default=5, help="prefixes generated per user")
    p.add_argument("--epsilon", type=float, default=0.01,
                   help="bandit score threshold (UCB of a SKU's share of its product's demand)")
    p.add_argument("--bandit", choices=("ucb", "thompson"), default="ucb")
    p.set_defaults(func=_cmd_eval_coldstart)
