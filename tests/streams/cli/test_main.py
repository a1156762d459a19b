from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from streams.cli.main import build_parser


def test_cli_registers_commands_without_importing_torch() -> None:
    code = ("import sys; from streams.cli.main import build_parser; build_parser(); "
            "print('torch' in sys.modules)")
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=root)
    assert out.stdout.strip() == "False"


def test_cli_parses_train_and_bench_arguments() -> None:
    parser = build_parser()
    args = parser.parse_args(["train-recall", "--data", "d", "--max-minutes", "5", "--seed", "3"])
    assert args.max_minutes == 5 and args.seed == 3 and args.func is not None
    args = parser.parse_args(["bench", "recall", "--beam", "20", "-k", "10"])
    assert args.beam == 20 and args.k == 10
    args = parser.parse_args(["eval-recall", "--split", "valid"])
    assert args.split == "valid"
