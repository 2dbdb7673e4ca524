"""`cmedgui refine`: Rietveld refinement of one or several structures against a measured pattern."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from cmedgui.commands.solve import drive, load_pattern, write_outputs
from model.exporters import export
from model.pattern import ANODES
from model.refine import refine_structure
from model.structure import load_structures

# tags stating the published profile wR, as a fraction (IUCr CIF dictionary)
_PUBLISHED_RWP = re.compile(r"^\s*(_pd_proc_ls_prof_wR_factor|_refine_ls_wR_factor_all)\s+([0-9.]+)", re.MULTILINE)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "refine", help="Rietveld refinement of one or several structures against a pattern",
        description="Refine STRUCTURE (several files, or a CIF with several structure blocks, are "
                    "refined together as the phases of a mixture) against PATTERN: per phase scale, "
                    "cell, free Wyckoff coordinates and Biso; shared zero shift, TCH pseudo-Voigt "
                    "widths and Chebyshev background; Kα2 ratio, sample displacement, peak asymmetry "
                    "and March–Dollase preferred orientation where they pay. Writes to DIR the "
                    "refined CIF (one more, <stem>_phaseN.cif, per further phase), a JSON report "
                    "with each phase's weight fraction, the fitted profile, the F_obs and "
                    "difference Fourier maps (<stem>_fobs.cube, <stem>_diff.cube, e/Å³) and the "
                    "difference map's peaks and holes (<stem>_peaks.csv: x,y,z,height,nearest_atom).")
    parser.add_argument("pattern", metavar="PATTERN", help="powder pattern file (any format cmedgui info reads)")
    parser.add_argument("structures", nargs="+", metavar="STRUCTURE.cif", help="starting structure(s)")
    parser.add_argument("--wavelength", default=None, metavar="λ",
                        help=f"Å or an anode ({', '.join(ANODES)}); default: the file's")
    parser.add_argument("--exclude", nargs=2, type=float, action="append", default=[], metavar=("MIN", "MAX"),
                        help="2θ region (degrees) left out of the fit; repeatable")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    pattern = load_pattern(args.pattern, args.wavelength)
    sources = [(Path(path), structure) for path in args.structures for structure in load_structures(path)]
    result = drive(refine_structure(pattern, [structure for _, structure in sources],
                                    excluded=[tuple(r) for r in args.exclude]))
    out, stem = Path(args.out), Path(args.pattern).name.split(".")[0]
    phases = []
    for n, ((path, _), phase) in enumerate(zip(sources, [result, *result.phases]), 1):
        written = f"{stem}.cif" if n == 1 else f"{stem}_phase{n}.cif"
        phases.append({"structure_file": str(path), "cif": written, "space_group": phase.space_group,
                       "lattice": dict(zip(("a", "b", "c", "alpha", "beta", "gamma"), phase.lattice)),
                       "weight_fraction": phase.weight_fraction, "refined": phase.message,
                       "sites": [{"element": s.element, "xyz": list(s.xyz), "occupancy": s.occupancy,
                                  "biso": s.biso, "wyckoff": s.wyckoff} for s in phase.sites]})
    extra = {"structure_file": str(sources[0][0]), "phases": phases}
    published = published_rwp(sources[0][0])
    if published is not None:
        extra["published_rwp"] = published
    write_outputs(out, Path(args.pattern), result, extra)
    for phase, entry in zip(result.phases, phases[1:]):
        export(out / entry["cif"], phase)
    return 0


def published_rwp(path: Path) -> float | None:
    """The profile wR (%) a CIF states for its own refinement, where it states one."""
    try:
        match = _PUBLISHED_RWP.search(path.read_text(errors="replace"))
    except OSError:
        return None
    return 100 * float(match.group(2)) if match else None
