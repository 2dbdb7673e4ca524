"""`cmedgui simulate`: the powder pattern (and optionally the stick list) of a structure file."""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from model.errors import InputError
from model.exporters import EXPORTERS, export, exporter_for
from model.instrument import Instrument
from model.pattern import ANODES, parse_wavelength
from model.simulate import Sample, simulate_pattern, sticks
from model.structure import load_structure

ENDINGS = ", ".join(ext for e in EXPORTERS if e.kind == "pattern" for ext in e.extensions)
MAX_POINTS = 10_000_000
DEFAULTS = Instrument(ANODES["CuKa"])
SAMPLE_DEFAULTS = Sample()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate", help="powder pattern of a structure (Kα doublet, pseudo-Voigt peaks, background)",
        description="Simulated powder X-ray pattern of a structure file: Thompson–Cox–Hastings "
                    "pseudo-Voigt peaks at Kα1 and Kα2, Lorentz–polarisation, zero shift, "
                    "Chebyshev background and optional Poisson noise; intensities as pymatgen's "
                    f"XRDCalculator. Output format from the file name ({ENDINGS}).")
    parser.add_argument("structure", metavar="CIF", help="structure file (CIF, POSCAR, …)")
    parser.add_argument("--wavelength", default="CuKa", metavar="λ",
                        help=f"Å or an anode: {', '.join(ANODES)} (default CuKa, with Kα2)")
    parser.add_argument("--two-theta", nargs=2, type=float, default=(5.0, 90.0), metavar=("MIN", "MAX"),
                        help="2θ range in degrees (default 5 90)")
    parser.add_argument("--step", type=float, default=0.02, help="2θ step in degrees (default 0.02)")
    parser.add_argument("--sticks", metavar="STICKS.csv",
                        help="also write the Kα1 stick list (two_theta,intensity,d,h,k,l,multiplicity)")
    parser.add_argument("--biso", type=float, default=None, metavar="B",
                        help="isotropic B in Å² for every atom (default: none, as XRDCalculator)")
    parser.add_argument("--widths", nargs=5, type=float, metavar=("U", "V", "W", "X", "Y"),
                        default=(DEFAULTS.u, DEFAULTS.v, DEFAULTS.w, DEFAULTS.x, DEFAULTS.y),
                        help="Gaussian FWHM² = U tan²θ + V tanθ + W (deg²), Lorentzian FWHM = "
                             "X/cosθ + Y tanθ (deg); default %(default)s")
    parser.add_argument("--zero", type=float, default=0.0, help="zero shift in degrees 2θ")
    parser.add_argument("--background", nargs="*", type=float, default=SAMPLE_DEFAULTS.background, metavar="C",
                        help="Chebyshev background coefficients as fractions of the strongest peak "
                             "(none for no background); default %(default)s")
    parser.add_argument("--no-ka2", action="store_true", help="Kα1 only (monochromated instrument)")
    parser.add_argument("--counts", type=float, default=None, metavar="N",
                        help="add Poisson noise with N counts at the strongest point (default: no noise)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for the noise")
    parser.add_argument("-o", "--output", required=True, metavar="PATTERN", help=f"output file ({ENDINGS})")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    exporter = exporter_for(args.output, "pattern")  # refuse an unknown ending before any work
    two_theta = _grid(*args.two_theta, args.step)
    wavelength = parse_wavelength(args.wavelength)
    u, v, w, x, y = args.widths
    # a Kα1 monochromator: the anode's Kα2 at ratio 0 (model.instrument.doublet_of)
    radiation = dataclasses.replace(wavelength, ratio=0.0) if args.no_ka2 and wavelength.ka2 else wavelength
    instrument = Instrument(radiation, u=u, v=v, w=w, x=x, y=y, zero=args.zero)
    sample = Sample(background=tuple(args.background), counts=args.counts)
    structure = load_structure(args.structure)
    try:
        pattern = simulate_pattern(structure, instrument, two_theta, sample,
                                   np.random.default_rng(args.seed), biso=args.biso)
        stick_list = sticks(structure, wavelength, tuple(args.two_theta), args.biso) if args.sticks else None
    except InputError as error:  # the model does not know which file the structure came from
        raise InputError(args.structure, error.problem) from None
    pattern = dataclasses.replace(pattern, provenance=dataclasses.replace(
        pattern.provenance, path=str(args.structure)))
    export(args.output, pattern, kind="pattern")
    if stick_list is not None:
        stick_list.write_csv(args.sticks)
    print(f"{args.output}: {exporter.name}, {len(pattern)} points {two_theta[0]:g}–{two_theta[-1]:g}° 2θ "
          f"of {structure.composition.reduced_formula} at λ = {wavelength.ka1:g} Å"
          f"{' + Kα2' if instrument.doublet else ''}"
          + (f"; {len(stick_list)} sticks in {args.sticks}" if stick_list is not None else ""))
    return 0


def _grid(low: float, high: float, step: float) -> np.ndarray:
    """The 2θ grid low, low + step, … ≤ high (degrees), refusing absurd ranges and sizes."""
    if not (np.isfinite(low) and np.isfinite(high) and 0 <= low < high < 180):
        raise InputError("--two-theta", f"range {low:g} {high:g} must satisfy 0 ≤ MIN < MAX < 180 degrees")
    if not (np.isfinite(step) and step > 0):
        raise InputError("--step", f"step {step:g} must be a positive number of degrees")
    points = int(np.floor((high - low) / step + 1e-9)) + 1
    if points > MAX_POINTS:
        raise InputError("--step", f"{points} points is more than the {MAX_POINTS} supported")
    if points < 2:
        raise InputError("--step", f"step {step:g}° leaves fewer than 2 points in {low:g}–{high:g}°")
    return low + step * np.arange(points)
