"""``sidstream up | worker | replay | recs | demo | seed``: running the stream."""

from __future__ import annotations

import argparse

from streams.settings import STORES, Settings


def _cmd_up(args: argparse.Namespace) -> int:
    # lazy: the embedded stack's tooling loads only when the command runs
    from infra.embedded import run_up

    return run_up()


def worker_settings(args: argparse.Namespace) -> Settings | None:
    """The ``SIDSTREAM_*`` settings with the worker's flags over them (None: no flag given,
    the worker reads the environment itself)."""
    if args.store is None:
        return None
    # with_values, not from_env(store=...): from_env fails on a field the environment sets too
    return Settings.from_env().with_values(store=args.store)


def _cmd_worker(args: argparse.Namespace) -> int:
    # lazy: faust loads only when the command runs
    from streams.runtime.worker import run_worker

    return run_worker(loglevel=args.loglevel, settings=worker_settings(args))


def _cmd_replay(args: argparse.Namespace) -> int:
    # lazy: kafka clients load only when the command runs
    from streams.jobs.replay import ReplayConfig, run_replay

    cfg = ReplayConfig(dataset=args.dataset, rate=args.rate, limit=args.limit,
                       items=not args.no_items, seed=args.seed)
    run_replay(cfg)
    return 0


def _cmd_recs(args: argparse.Namespace) -> int:
    # lazy: redis loads only when the command runs
    from streams.jobs.recs import print_recs

    return print_recs(args.user_id, as_json=args.json)


def _cmd_demo(args: argparse.Namespace) -> int:
    # lazy: faust, torch and the stack load only when the command runs
    from streams.jobs.demo import DemoConfig, run_demo

    given = {name: value for name, value in (("limit", args.limit), ("rate", args.rate))
             if value is not None}  # else DemoConfig's defaults
    if args.fast:
        given["rate"] = 0.0
    return run_demo(DemoConfig(users=args.users, models=not args.no_models, **given))


def _cmd_seed(args: argparse.Namespace) -> int:
    # lazy: the data set loads only when the command runs
    from streams.jobs.seed import build_seed

    build_seed(args.dataset, args.out)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("up", help="embedded broker + Redis on loopback (foreground, Ctrl-C stops)"
                   ).set_defaults(func=_cmd_up)

    p = sub.add_parser("worker", help="run the faust worker with the SIDSTREAM_* settings")
    p.add_argument("--loglevel", default="info")
    p.add_argument("--store", choices=STORES, default=None,
                   help="user-state table store, over SIDSTREAM_STORE")
    p.set_defaults(func=_cmd_worker)

    p = sub.add_parser("replay", help="replay a data set as events onto sidstream-events")
    p.add_argument("dataset", help="'movielens' or a shared-format directory")
    p.add_argument("--rate", type=float, default=0.0, help="events/s (0: as fast as possible)")
    p.add_argument("--limit", type=int, default=0, help="stop after N events (0: all)")
    p.add_argument("--no-items", action="store_true", help="do not send catalogue upserts first")
    p.add_argument("--seed", type=int, default=0, help="seed for event ids and spread timing")
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser("recs", help="print a user's recommendation list from Redis")
    p.add_argument("user_id")
    p.add_argument("--json", action="store_true", help="print the raw JSON payload")
    p.set_defaults(func=_cmd_recs)

    p = sub.add_parser("demo", help="embedded stack + worker + paced MovieLens replay + sample "
                       "lists")
    p.add_argument("--limit", type=int, default=None,
                   help="events to replay (default 20,000; 0: all 99,693)")
    p.add_argument("--rate", type=float, default=None,
                   help="events/s offered (default 500: what one worker with the demo models "
                   "sustains on 2 cores)")
    p.add_argument("--fast", action="store_true",
                   help="replay as fast as the producer goes: the worker falls behind and the "
                   "progress lines show it catching up")
    p.add_argument("--users", type=int, default=3, help="users whose lists are printed")
    p.add_argument("--no-models", action="store_true",
                   help="cheap channels only (default: train MovieLens models once into "
                   "artifacts/demo, then serve them)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("seed", help="build the co-visitation/popularity seed from a data set")
    p.add_argument("dataset", help="'movielens' or a shared-format directory")
    p.add_argument("--out", default=None, help="output file (default: $SIDSTREAM_MODEL_DIR/seed)")
    p.set_defaults(func=_cmd_seed)
