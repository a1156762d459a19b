from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def test_cli_registers_commands_without_importing_torch() -> None:
    code = ("import argparse, sys; from streams.cli import models_cmds as cli; "
            "p = argparse.ArgumentParser(); "
            "s = p.add_subparsers(); cli.add_commands(s); "
            "cli.add_bench_commands(s.add_parser('bench').add_subparsers()); "
            "print('torch' in sys.modules)")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=root)
    assert out.stdout.strip() == "False"


def test_cli_parses_train_and_bench_arguments() -> None:
    from streams.cli import models_cmds as cli

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli.add_commands(sub)
    bench = sub.add_parser("bench").add_subparsers(dest="bench")
    cli.add_bench_commands(bench)
    args = parser.parse_args(["train-recall", "--data", "d", "--max-minutes", "5", "--seed", "3"])
    assert args.max_minutes == 5 and args.seed == 3 and args.func is not None
    args = parser.parse_args(["bench", "recall", "--beam", "20", "-k", "10"])
    assert args.beam == 20 and args.k == 10
    args = parser.parse_args(["eval-recall", "--split", "valid"])
    assert args.split == "valid"
