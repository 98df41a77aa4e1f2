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


def run(name: str, fn: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """``fn(args)``; a ``SingalignError`` (bad input, missing file) becomes one line on stderr,
    ``<name>: error: ...``, and exit code 1 instead of a traceback."""
    try:
        return fn(args)
    except SingalignError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 1


def add_tuning_args(ap: argparse.ArgumentParser, tuned: str) -> None:
    """The options every decoder-tuning recipe (``tune_lm``, ``tune_notes``) shares: which validation
    records, separation, progress bars, and ``--save-bundle`` for a copy carrying the ``tuned`` values."""
    ap.add_argument("--split", default=None, help="keep only manifest records of this split")
    ap.add_argument("--limit", type=int, default=None, help="use at most N items")
    ap.add_argument("--no-separation", action="store_true", help="manifest records: skip vocal separation")
    ap.add_argument("--save-bundle", default=None, help=f"write a copy of the bundle with the best {tuned}")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
