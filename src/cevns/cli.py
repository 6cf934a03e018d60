"""Command-line interface: ``cevns <command> ...``.

Each command group lives in its own module and exposes ``register(subparsers)``; this file only wires them.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from cevns.errors import CevnsError

# (module, description). Each module defines register(subparsers) that adds its parser(s) and sets `func`.
COMMAND_MODULES = [
    "cevns.commands.reproduce",
    "cevns.commands.fit",
    "cevns.commands.scan",
    "cevns.alerts.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cevns", description="CEvNS and low-energy recoil toolkit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for modname in COMMAND_MODULES:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:  # an optional command group whose module is absent
            if exc.name and modname.startswith(exc.name):
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc = args.func(args)
    except CevnsError as exc:
        print(f"cevns: error: {exc}", file=sys.stderr)
        return 2
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
