"""What the command groups share: the default data set, the common flags, torch set-up."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

Handler = Callable[[argparse.Namespace], int]

BEAUTY = "../shared/data/amazon-beauty-2014"


def add_common(p: argparse.ArgumentParser, data: bool = True) -> None:
    if data:
        p.add_argument("--data", default=BEAUTY, help="shared-format data set directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads")


def setup_torch(args: argparse.Namespace) -> None:
    """Offline model loading, ``--threads`` torch threads, ``--seed``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch  # lazy: torch is heavy; `sidstream --help` and the stream commands never need it

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
