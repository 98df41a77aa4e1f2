"""What every script in ``recipes/`` shares: its argument parser and its handling of errors.

A recipe's module docstring is its help: the first paragraph is the description, the whole
docstring (with its ``Usage:`` block) the epilog.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from singalign.errors import SingalignError


def parser(doc: str) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` whose help is the recipe's docstring ``doc``, formatted as written."""
    return argparse.ArgumentParser(
        description=doc.split("\n\n")[0], epilog=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def add_shard_args(ap: argparse.ArgumentParser) -> None:
    """``--shard i/n`` and ``--threads N``, for the recipes whose work is per file."""
    ap.add_argument("--shard", default=None, help="i/n: process shard i of n (0-based)")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads for this process (default: every core); shards run side by side on one "
        "machine should share the cores out, e.g. --threads 1 for each of 2 shards on 2 cores",
    )


def apply_threads(args: argparse.Namespace) -> None:
    """Set torch's thread count from ``args.threads`` (when given). Without it, each of n shards on
    one machine starts as many threads as there are cores, and they fight: two separation shards on
    2 cores took 5.5 s a song each, against 1.6 s with one thread each (30 s synthetic songs)."""
    if getattr(args, "threads", None) is not None:
        import torch

        if args.threads < 1:
            raise SystemExit(f"--threads must be at least 1, not {args.threads}")
        torch.set_num_threads(args.threads)


def run(name: str, fn: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """``fn(args)``; a ``SingalignError`` (bad input, missing file) becomes one line on stderr,
    ``<name>: error: ...``, and exit code 1 instead of a traceback."""
    try:
        return fn(args)
    except SingalignError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 1


def add_separation_args(ap: argparse.ArgumentParser) -> None:
    """How the recipes that run whole songs through the pipeline get their vocals: the bundle's
    separator (default), ``--no-separation`` (the mixture in both channels), or ``--vocals DIR``, the
    cache ``recipes/separate.py`` wrote with the same separator (songs missing from it are separated)."""
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--no-separation", action="store_true", help="skip vocal separation (mixture twice)")
    g.add_argument(
        "--vocals",
        default=None,
        help="separated vocals cache (recipes/separate.py, made with this bundle's separator): "
        "its songs are not separated again",
    )


def add_tuning_args(ap: argparse.ArgumentParser, tuned: str) -> None:
    """The options every decoder-tuning recipe (``tune_lm``, ``tune_notes``) shares: which validation
    records, separation, progress bars, and ``--save-bundle`` for a copy carrying the ``tuned`` values."""
    ap.add_argument("--split", default=None, help="keep only manifest records of this split")
    ap.add_argument("--limit", type=int, default=None, help="use at most N items")
    add_separation_args(ap)
    ap.add_argument("--save-bundle", default=None, help=f"write a copy of the bundle with the best {tuned}")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
