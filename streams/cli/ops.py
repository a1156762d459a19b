"""``sidstream promote | chaos``: operating a deployment (promotion gate, fault drills)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_promote(args: argparse.Namespace) -> int:
    # lazy: torch and the stream's pipeline load only when the command runs
    from streams.jobs.promote import PromoteConfig, run_promote

    doc = run_promote(PromoteConfig(Path(args.challenger), data=args.data, events=args.events,
                                    k=args.k, dry_run=args.dry_run))
    for arm in ("champion", "challenger"):
        if arm in doc:
            r = doc[arm]
            print(f"{arm:<10} {r['version']}: click rate@{doc['k']} {r['click_rate']:.4f} "
                  f"({r['clicks']} clicks), order rate@{doc['k']} {r['order_rate']:.4f} "
                  f"({r['orders']} orders)")
    print(f"{'PROMOTED' if doc['promoted'] else 'kept the champion'}: {doc['reason']}")
    return 0


def _cmd_chaos(args: argparse.Namespace) -> int:
    # lazy: the stack and faust workers load only when the command runs
    from streams.jobs.chaos_run import run_chaos
    from streams.jobs.chaos_scenarios import ChaosConfig

    cfg = ChaosConfig(events=args.events, rate=args.rate, kills=args.kills,
                      outage_s=args.outage_s, seed=args.seed)
    seeds = tuple(int(s) for s in args.seeds.split(",")) if args.seeds else None
    return run_chaos(args.scenarios, cfg, seeds, args.json)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("promote", help="champion/challenger: promote an artifact version only "
                       "if the order rate rises and the click rate drops by < 10%%")
    p.add_argument("challenger", help="artifact version directory (recall or ranker)")
    p.add_argument("--data", default="movielens", help="'movielens' or a shared-format dir")
    p.add_argument("--events", type=int, default=5000, help="most recent events replayed")
    p.add_argument("-k", type=int, default=10, help="list length the hit rates are taken at")
    p.add_argument("--dry-run", action="store_true", help="report, write nothing")
    p.set_defaults(func=_cmd_promote)

    p = sub.add_parser("chaos", help="fault-injection scenarios on the embedded stack")
    p.add_argument("scenarios", nargs="*",
                   default=["crash", "scale", "scale3", "redis", "sigterm", "broker"],
                   help="crash, scale, scale3, redis, sigterm, broker (default: all)")
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--rate", type=float, default=1_000.0, help="offered events/s")
    p.add_argument("--kills", type=int, default=4, help="SIGKILLs in the crash scenario")
    p.add_argument("--outage-s", type=float, default=20.0, help="Redis outage length")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", default=None, metavar="N,N,...",
                   help="run each scenario once per seed (instead of --seed)")
    p.add_argument("--json", default=None, help="also write every run's result to this file")
    p.set_defaults(func=_cmd_chaos)
