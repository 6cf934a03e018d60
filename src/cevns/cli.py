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
    "cevns.commands.predict",
    "cevns.alerts.cli",
    "cevns.commands.supernova",
    "cevns.commands.darkmatter",
    "cevns.commands.dm_limit",
]


def build_parser() -> argparse.ArgumentParser:
    from cevns import __version__

    parser = argparse.ArgumentParser(prog="cevns", description="CEvNS and low-energy recoil toolkit: reproduce, fit "
                                     "and scan experiments, predict rates, run the supernova alert service")
    parser.add_argument("--version", action="version", version=f"cevns {__version__}")
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
        from cevns.threads import limit_blas_threads

        limit_blas_threads()  # small matrices: one BLAS thread is faster (CEVNS_BLAS_THREADS to change)
        rc = args.func(args)
    except CevnsError as exc:
        print(f"cevns: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file system problem that only showed up while writing (disk full, ...)
        print(f"cevns: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cevns: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
