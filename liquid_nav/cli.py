"""The ``liquid-nav`` command line.

Each area of the package contributes its subcommands through a ``register(subparsers)`` function in
its ``commands`` module; those modules import heavy dependencies (torch, pybullet) only inside the
handlers, so ``liquid-nav --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from liquid_nav import __version__

COMMAND_MODULES = (
    "liquid_nav.sim.commands",
    "liquid_nav.expert.commands",
    "liquid_nav.models.commands",
    "liquid_nav.runtime.commands",
    "liquid_nav.data.commands",
    "liquid_nav.train.commands",
    "liquid_nav.evaluate.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liquid-nav",
        description="Liquid neural network drone navigation: simulate, train, evaluate, export.",
    )
    parser.add_argument("--version", action="version", version=f"liquid_nav {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
