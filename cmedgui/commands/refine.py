"""`cmedgui refine`: Rietveld refinement of a given structure against a measured pattern."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from cmedgui.commands.solve import drive, load_pattern, write_outputs
from model.pattern import ANODES
from model.refine import refine_structure
from model.structure import load_structure

# tags stating the published profile wR, as a fraction (IUCr CIF dictionary)
_PUBLISHED_RWP = re.compile(r"^\s*(_pd_proc_ls_prof_wR_factor|_refine_ls_wR_factor_all)\s+([0-9.]+)", re.M)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "refine", help="Rietveld refinement of a structure against a pattern",
        description="Refine scale, zero shift, cell, TCH pseudo-Voigt widths, Chebyshev background, "
                    "free Wyckoff coordinates and Biso of STRUCTURE against PATTERN; writes the "
                    "refined CIF, a JSON report and the fitted profile to DIR.")
    parser.add_argument("pattern", metavar="PATTERN", help="powder pattern file (any format cmedgui info reads)")
    parser.add_argument("structure", metavar="STRUCTURE.cif", help="starting structure")
    parser.add_argument("--wavelength", default=None, metavar="λ",
                        help=f"Å or an anode ({', '.join(ANODES)}); default: the file's")
    parser.add_argument("--exclude", nargs=2, type=float, action="append", default=[], metavar=("MIN", "MAX"),
                        help="2θ region (degrees) left out of the fit; repeatable")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    pattern = load_pattern(args.pattern, args.wavelength)
    structure = load_structure(args.structure)
    result = drive(refine_structure(pattern, structure, excluded=[tuple(r) for r in args.exclude]))
    extra = {"structure_file": str(args.structure)}
    published = published_rwp(Path(args.structure))
    if published is not None:
        extra["published_rwp"] = published
    write_outputs(Path(args.out), Path(args.pattern), result, extra)
    return 0


def published_rwp(path: Path) -> float | None:
    """The profile wR (%) a CIF states for its own refinement, where it states one."""
    try:
        match = _PUBLISHED_RWP.search(path.read_text(errors="replace"))
    except OSError:
        return None
    return 100 * float(match.group(2)) if match else None
