"""The ``sidstream`` command line: one entry point, a sub-command per job.

One parser; each command group registers its commands from a module of its own (``stream``,
``train``, ``evaluate``, ``bench``, ``ops``). Nothing heavy (torch, faust) is imported until a
command runs: the groups import their jobs inside the handlers.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from streams.cli import bench, evaluate, ops, stream, train
from streams.cli.common import Handler

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sidstream", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    stream.add_commands(sub)
    ops.add_commands(sub)
    train.add_commands(sub)
    evaluate.add_commands(sub)
    bench_parser = sub.add_parser("bench", help="benchmarks that print figures")
    bench.add_commands(bench_parser.add_subparsers(dest="bench", required=True))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python is chatty at INFO
    func: Handler = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
    except (FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
