"""`cmedgui solve`: crystal structures from powder patterns, one output set per pattern."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Generator
from pathlib import Path

import numpy as np

from model.errors import InputError
from model.exporters import export
from model.pattern import ANODES, Pattern, parse_wavelength
from model.result import Progress, SolveResult

SYSTEM_CHOICES = ("auto", "cubic", "hexagonal", "trigonal", "tetragonal", "orthorhombic")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "solve", help="solve crystal structures from powder patterns",
        description="Index each pattern, search atom placements in the space groups its extinctions "
                    "allow, refine the best candidates against the full profile and keep the best Rwp "
                    "(the network's density, where installed, is shown). Writes DIR/<stem>.cif, "
                    "<stem>_report.json, <stem>_fit.csv and <stem>_density.cube. Exit 1 when a "
                    "pattern is not solved (its report says why and holds the best attempt).")
    parser.add_argument("patterns", nargs="+", metavar="PATTERN", help="powder pattern files")
    parser.add_argument("--elements", nargs="+", required=True, metavar="E", help="elements in the sample")
    parser.add_argument("--formula", default=None, help="formula or stoichiometry, e.g. Mg2Si")
    parser.add_argument("--wavelength", default=None, metavar="λ",
                        help=f"Å or an anode ({', '.join(ANODES)}); default: the file's")
    parser.add_argument("--system", default="auto", choices=SYSTEM_CHOICES, help="crystal system (default auto)")
    parser.add_argument("--samples", type=int, default=4, metavar="K", help="network density samples per cell")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from model.solve import solve

    if args.samples < 1:
        raise InputError(None, f"--samples must be at least 1, not {args.samples}")
    patterns = [(Path(p), load_pattern(p, args.wavelength)) for p in args.patterns]
    status = 0
    for path, pattern in patterns:
        print(f"cmedgui: solving {path.name}", file=sys.stderr)
        result = drive(solve(pattern, args.elements, formula=args.formula, system=args.system,
                             samples=args.samples, device=args.device))
        write_outputs(Path(args.out), path, result, {"elements": list(args.elements), "formula": args.formula})
        print(f"cmedgui: {path.name}: {'solved' if result.solved else 'NOT solved'}, {result.space_group} "
              f"Rwp {result.rwp:.2f} %" + ("" if result.solved else f" ({result.message})"), file=sys.stderr)
        status = status or (0 if result.solved else 1)
    return status


def load_pattern(path: str | Path, wavelength: str | None) -> Pattern:
    """The first scan of a pattern file, with the wavelength given on the command line if any."""
    from model.readers import read_patterns

    patterns = read_patterns(path, parse_wavelength(wavelength) if wavelength else None)
    pattern = patterns[0]
    if pattern.wavelength is None:
        raise InputError(path, "the file states no wavelength: give one with --wavelength (e.g. CuKa)")
    return pattern


def drive(job: Generator[Progress, None, SolveResult]) -> SolveResult:
    """Run a solve/refine generator to its end, printing progress on stderr (at most 1 line/s)."""
    last = 0.0
    while True:
        try:
            progress = next(job)
        except StopIteration as stop:
            return stop.value
        now = time.monotonic()
        if now - last >= 1.0 or progress.fraction >= 1.0:
            print(f"  {progress.stage:>8} {100 * progress.fraction:5.1f} %  {progress.message}", file=sys.stderr)
            last = now


def write_outputs(out: Path, pattern_path: Path, result: SolveResult, extra: dict) -> None:
    """<stem>.cif, <stem>_report.json, <stem>_fit.csv and <stem>_density.cube in ``out``."""
    from model.density import cmed

    stem = pattern_path.name.split(".")[0]
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    if result.atoms:
        export(out / f"{stem}.cif", result)
        written["cif"] = f"{stem}.cif"
        density = result.density if result.density is not None else cmed(result.structure)
        export(out / f"{stem}_density.cube", density)
        written["density"] = f"{stem}_density.cube"
    if result.fit is not None:
        export(out / f"{stem}_fit.csv", result.fit)
        written["fit"] = f"{stem}_fit.csv"
    report = {
        "pattern": str(pattern_path), "solved": result.solved, "message": result.message,
        # JSON has no NaN: an attempt that never reached refinement has null agreement factors
        **{key: value if math.isfinite(value) else None
           for key, value in (("rwp", result.rwp), ("rp", result.rp), ("gof", result.gof))},
        "lattice": dict(zip(("a", "b", "c", "alpha", "beta", "gamma"), result.lattice)),
        "space_group": result.space_group, "space_group_number": result.space_group_number,
        "crystal_system": result.crystal_system,
        "sites": [{"element": s.element, "xyz": list(s.xyz), "occupancy": s.occupancy, "biso": s.biso,
                   "wyckoff": s.wyckoff} for s in result.sites],  # the asymmetric unit
        "device": result.device, "model_version": result.model_version,
        "density_source": "network" if result.density is not None else "refined structure (IAM)",
        "timings_s": result.timings, "files": written,
        "alternatives": [{"space_group": a.space_group, "rwp": a.rwp} for a in result.alternatives],
        **extra,
    }
    from model.files import atomic_write

    with atomic_write(out / f"{stem}_report.json") as handle:
        json.dump(report, handle, indent=2, default=_plain)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")
