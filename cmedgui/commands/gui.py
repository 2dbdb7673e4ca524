"""`cmedgui` with no command: the desktop window (scripted with --open/--solve/--screenshot/--quit)."""

from __future__ import annotations

import argparse


def add_window_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--open", dest="open_files", nargs="+", metavar="FILE", default=[],
                        help="pattern or structure files to open (default: the bundled example)")
    parser.add_argument("--elements", nargs="+", metavar="E", default=[],
                        help="elements known to be in the sample")
    parser.add_argument("--solve", action="store_true", help="solve the first opened pattern")
    parser.add_argument("--screenshot", metavar="PNG", help="save a screenshot of the window when done")
    parser.add_argument("--quit", action="store_true", help="close the window when done")


def run(args: argparse.Namespace) -> int:
    from cmedgui.app.main import (
        run_window,  # Qt and the plots load only when the window is asked for
    )

    return run_window(args)
