"""The `cmedgui` command: the window with no subcommand, batch tools with one.

Each subcommand lives in `cmedgui.commands.<name>` and exposes
``register(subparsers)``, which adds its parser and sets ``handler``.
Bad input (model.errors.InputError) exits 2 with one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from model.errors import InputError

COMMANDS = ("info", "simulate", "density", "solve", "refine")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; where ``argv`` starts with a command, only that command's module is imported
    (the others import torch and pymatgen: seconds that `cmedgui info` must not wait for)."""
    parser = argparse.ArgumentParser(
        prog="cmedgui",
        description="Crystal structures from powder diffraction. Without a command, opens the window.",
    )
    from cmedgui.commands import gui

    gui.add_window_arguments(parser)
    parser.set_defaults(handler=gui.run)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    named = [word for word in (argv or [])[:1] if word in COMMANDS]
    for name in named or COMMANDS:
        module = importlib.import_module(f"cmedgui.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except InputError as error:
        print(f"cmedgui: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cmedgui: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug, not bad input: one line unless debugging
        if os.environ.get("CMEDGUI_DEBUG"):
            raise
        print(f"cmedgui: internal error: {type(error).__name__}: {error} "
              f"(set CMEDGUI_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
