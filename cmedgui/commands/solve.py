"""`cmedgui solve`: crystal structures from powder patterns, one output set per pattern."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Generator
from pathlib import Path
from typing import TextIO

import numpy as np

from model.data.systems import SOLVE_CHOICES
from model.errors import InputError
from model.exporters import export
from model.pattern import ANODES, Pattern, parse_wavelength
from model.result import Progress, SolveResult

PROGRESS_EVERY_S = 1.0  # at most one progress report a second


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "solve", help="solve crystal structures from powder patterns",
        description="Index each pattern, search atom placements in the space groups its extinctions "
                    "allow, refine the best candidates against the full profile and keep the best Rwp "
                    "(the network's density, where installed, is shown). Writes DIR/<stem>.cif, "
                    "<stem>_report.json, <stem>_fit.csv, <stem>_density.cube and for the refined "
                    "structure its F_obs and difference Fourier maps (<stem>_fobs.cube, "
                    "<stem>_diff.cube) and peak list (<stem>_peaks.csv). Exit 1 when a "
                    "pattern is not solved (its report says why and holds the best attempt).")
    parser.add_argument("patterns", nargs="+", metavar="PATTERN", help="powder pattern files")
    parser.add_argument("--elements", nargs="+", required=True, metavar="E", help="elements known to be in the sample")
    parser.add_argument("--possible", nargs="+", default=[], metavar="E", help="elements that may be in the sample")
    parser.add_argument("--excluded", nargs="+", default=[], metavar="E", help="elements that are not in the sample")
    parser.add_argument("--formula", default=None,
                        help="formula or stoichiometry, e.g. Mg2Si: every element, no excluded one")
    parser.add_argument("--wavelength", default=None, metavar="λ",
                        help=f"Å or an anode ({', '.join(ANODES)}); default: the file's")
    parser.add_argument("--system", default="auto", choices=SOLVE_CHOICES, help="crystal system (default auto)")
    parser.add_argument("--samples", type=int, default=4, metavar="K", help="network density samples per cell")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--phases", default=None, metavar="DIR",
                        help="folder of CIFs of phases that may be in the sample besides the main one "
                             "(the bundled elements, binaries and standards are always tried)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from model.phases import user_phases
    from model.solve import solve

    if args.samples < 1:
        raise InputError(None, f"--samples must be at least 1, not {args.samples}")
    if args.phases is not None:
        user_phases(args.phases)  # a bad folder or CIF is refused before the first solve, not after it
    patterns = [(Path(p), load_pattern(p, args.wavelength)) for p in args.patterns]
    status = 0
    for path, pattern in patterns:
        print(f"cmedgui: solving {path.name}", file=sys.stderr)
        result = drive(solve(pattern, args.elements, formula=args.formula, system=args.system,
                             samples=args.samples, device=args.device, possible=args.possible,
                             excluded=args.excluded, phase_folder=args.phases))
        write_outputs(Path(args.out), path, result, {"elements": list(args.elements), "possible": args.possible,
                                                     "excluded": args.excluded, "formula": args.formula})
        print(f"cmedgui: {path.name}: {'solved' if result.solved else 'NOT solved'}, {result.space_group} "
              f"Rwp {result.rwp:.2f} %" + _phase_list(result) + ("" if result.solved else f" ({result.message})"),
              file=sys.stderr)
        if result.verdict is not None:
            print(f"cmedgui: {path.name}: {result.verdict.text()}", file=sys.stderr)
        status = status or (0 if result.solved else 1)
    return status


def _phase_list(result: SolveResult) -> str:
    """The phases besides the main one with every phase's weight fraction, "" for one phase."""
    if not result.phases:
        return ""
    return "; " + ", ".join(f"{phase.formula} {100 * phase.weight_fraction:.1f} wt%"
                            for phase in [result, *result.phases])


def load_pattern(path: str | Path, wavelength: str | None) -> Pattern:
    """The first scan of a pattern file (or the pattern simulated from a structure file), with the
    wavelength given on the command line if any."""
    from cmedgui.opening import open_file

    pattern = open_file(path, parse_wavelength(wavelength) if wavelength else None).patterns[0]
    if pattern.wavelength is None:
        raise InputError(path, "the file states no wavelength: give one with --wavelength (e.g. CuKa)")
    return pattern


def drive(job: Generator[Progress, None, SolveResult], stream: TextIO | None = None,
          every_s: float = PROGRESS_EVERY_S) -> SolveResult:
    """Run a solve/refine generator to its end, reporting progress on ``stream`` (stderr).

    A terminal gets one line rewritten in place with the seconds elapsed, so a stage that sits at
    one percentage still shows it is alive; a file or pipe (a log) gets a new line only when the
    text changes, at most one every ``every_s`` seconds, and the last one.
    """
    stream = stream or sys.stderr
    live = stream.isatty()
    began, last, printed = time.monotonic(), -math.inf, ""
    while True:
        try:
            progress = next(job)
        except StopIteration as stop:
            if live and printed:
                stream.write("\n")
            return stop.value
        text = f"{progress.stage:>8} {100 * progress.fraction:5.1f} %  {progress.message}"
        now = time.monotonic()
        if not (now - last >= every_s or progress.fraction >= 1.0) or (not live and text == printed):
            continue
        stream.write(f"\r\x1b[K  {text}  ({now - began:.0f} s)" if live else f"  {text}\n")
        stream.flush()
        printed, last = text, now


def write_outputs(out: Path, pattern_path: Path, result: SolveResult, extra: dict) -> None:
    """<stem>.cif, <stem>_report.json, <stem>_fit.csv and <stem>_density.cube in ``out``; for a
    refined structure also its F_obs and difference Fourier maps (<stem>_fobs.cube,
    <stem>_diff.cube) and the difference map's peaks and holes (<stem>_peaks.csv)."""
    from model.density import cmed
    from model.fourier import with_maps

    stem = pattern_path.name.split(".")[0]
    out.mkdir(parents=True, exist_ok=True)
    written, density = {}, None
    if result.atoms and not result.maps:
        result = with_maps(result)  # first: the CIF states the difference map's extremes
    for key, kind, name in (("fobs", "F_obs", "fobs.cube"), ("diff", "difference", "diff.cube")):
        if kind in result.maps:
            export(out / f"{stem}_{name}", result.maps[kind])
            written[key] = f"{stem}_{name}"
    if result.maps:
        export(out / f"{stem}_peaks.csv", result.map_peaks, kind="peaks")
        written["peaks"] = f"{stem}_peaks.csv"
    if result.atoms:
        export(out / f"{stem}.cif", result)
        written["cif"] = f"{stem}.cif"
        # without the network, the map calculated from the atoms, in the solution's own cell
        density = result.density or cmed(result.structure, conventional=False)
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
        "density": density.description if density is not None else None,
        "timings_s": result.timings, "files": written, "difference_map": _difference_map(result),
        "alternatives": [{"space_group": a.space_group, "rwp": a.rwp} for a in result.alternatives],
        "weight_fraction": result.weight_fraction,
        "phases": [{"formula": p.formula, "space_group": p.space_group, "weight_fraction": p.weight_fraction,
                    "lattice": dict(zip(("a", "b", "c", "alpha", "beta", "gamma"), p.lattice))}
                   for p in result.phases],
        "verdict": result.verdict.as_dict() if result.verdict is not None else None,
        **extra,
    }
    from model.files import atomic_write

    with atomic_write(out / f"{stem}_report.json") as handle:
        json.dump(report, handle, indent=2, default=_plain)


def _difference_map(result: SolveResult) -> dict | None:
    """The difference map's extremes and σ (e/Å³) for the report, where it was computed."""
    from model.fourier import map_sigma

    if "difference" not in result.maps:
        return None
    values = result.maps["difference"].values
    return {"max_e_per_A3": float(values.max()), "min_e_per_A3": float(values.min()),
            "sigma_e_per_A3": map_sigma(result.maps["difference"]), "grid": result.maps["difference"].n}


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")
