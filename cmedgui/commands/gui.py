"""`cmedgui` with no command: the desktop window, scripted with --open, --elements, --formula, --solve,
--screenshot, --export and --quit."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping

from model.errors import InputError

# where one is set, Qt has a display (QT_QPA_PLATFORM: the user chose one, e.g. offscreen)
DISPLAY_VARIABLES = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")


def add_window_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--open", dest="open_files", nargs="+", metavar="FILE", default=[],
                        help="pattern or structure files to open (default: the bundled example)")
    parser.add_argument("--elements", nargs="+", metavar="E", default=[],
                        help="elements known to be in the sample")
    parser.add_argument("--formula", metavar="F", help="formula or stoichiometry, e.g. CeO2 (its elements become known)")
    parser.add_argument("--solve", action="store_true", help="solve the first opened pattern")
    parser.add_argument("--export", metavar="DIR",
                        help="when done, write every export there is something for into DIR (structure.cif, "
                             "density.cube, fit.xy, pattern.png, and with OpenGL density.png and report.html)")
    parser.add_argument("--screenshot", metavar="PNG", help="save a screenshot of the window when done")
    parser.add_argument("--quit", action="store_true", help="close the window when done")


def run(args: argparse.Namespace) -> int:
    check_display()
    from cmedgui.app.main import (
        run_window,  # Qt and the plots load only when the window is asked for
    )

    return run_window(args)


def check_display(environ: Mapping[str, str] = os.environ, platform: str = sys.platform) -> None:
    """Refuse in one line, saying what to do, where the window has no display to open on: on Linux
    without X or Wayland Qt would die naming a missing library (xcb-cursor0) instead."""
    if not platform.startswith("linux") or any(environ.get(name) for name in DISPLAY_VARIABLES):
        return
    raise InputError(None, "no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset). "
                           "Run it under a virtual display: xvfb-run -a cmedgui …; or, for a scripted run, "
                           "without one: QT_QPA_PLATFORM=offscreen cmedgui --open FILE --elements E… --solve "
                           "--export DIR --quit; the commands (cmedgui solve, info, …) need no display")
