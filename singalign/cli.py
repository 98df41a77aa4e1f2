"""The ``singalign`` command: a thin dispatcher.

Each stage module that offers commands defines ``register_cli(subparsers)``; it adds its
subcommand(s) and sets ``func`` (a callable taking the parsed namespace and returning an
exit code). Stage modules keep their top-level imports light (no torch) so that
``singalign --help`` is instant; heavy imports happen inside the command functions.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from singalign import __version__
from singalign.errors import SingalignError

#: Modules that register subcommands, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "singalign.transcribe",
    "singalign.align",
    "singalign.synth.cli",
    "singalign.scoring",
    "singalign.lm",
    "singalign.bundle",
    "singalign.library",
    "singalign.search",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (all subcommands registered)."""
    parser = argparse.ArgumentParser(
        prog="singalign",
        description=(
            "Singing analysis: separate vocals, transcribe lyrics and sung notes, align words, "
            "and score the results. Implements Deng, Nakamura & Yoshii (ISMIR 2022)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"singalign {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a stage not written yet
                continue
            raise
        module.register_cli(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 success, 1 a failed input, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SingalignError as exc:
        print(f"singalign: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("singalign: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`singalign score ... | head`): not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
