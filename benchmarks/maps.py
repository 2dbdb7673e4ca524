"""Fourier-map speed: all maps of a refined 20-atom cell (F_obs, F_calc, difference, 2F_obs − F_calc
and the difference map's peaks with their noise σ: model.fourier.with_maps), against one
model.density.cmed of the same cell in the same process (the reference). Target: ≤ 0.5 s on 2 cores.
The charge-flipping map of the same intensities (with_charge_flipping) is timed on its own line.

The "refined" result is built from a simulated pattern (observed: with Poisson noise; calculated:
without), so no refinement is timed. Run from the checkout:
OMP_NUM_THREADS=2 PYTHONPATH=. python benchmarks/maps.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import timeit

import numpy as np
from pymatgen.core import Lattice, Structure

from model.density import cmed
from model.fourier import map_sigma, with_charge_flipping, with_maps
from model.instrument import Instrument
from model.pattern import ANODES
from model.result import Fit, RefinementReport, SolveResult
from model.simulate import Sample, profile, reflections, simulate_pattern

TWO_THETA = np.arange(10, 100, 0.02)  # degrees, a laboratory scan
BACKGROUND = 20.0  # counts-scale flat background under the simulated profile


def perovskite() -> Structure:
    """LaInO3-like GdFeO3-type Pnma perovskite: La 4c, In 4b, O 4c, O 8d (20 atoms), B in Å²."""
    structure = Structure.from_spacegroup("Pnma", Lattice.orthorhombic(5.94, 8.22, 5.72), ["La", "In", "O", "O"],
                                          [[0.047, 0.25, 0.990], [0.0, 0.0, 0.5], [0.469, 0.25, 0.083],
                                           [0.305, 0.054, 0.703]])
    biso = {"La": 0.6, "In": 0.4, "O": 0.9}
    return structure.copy(site_properties={"biso": [biso[site.specie.symbol] for site in structure]})


def refined_result(structure: Structure) -> SolveResult:
    """A SolveResult as a refinement leaves it: structure with Biso, fit, instrument and weights."""
    instrument = Instrument(ANODES["CuKa"])
    biso = {site.specie.symbol: site.properties["biso"] for site in structure}
    sample = Sample(background=(), counts=1e5)
    observed = simulate_pattern(structure, instrument, TWO_THETA, sample, np.random.default_rng(0), biso).intensity
    calculated = profile(TWO_THETA, reflections(structure, 0.9, biso), instrument, Sample(background=()))
    background = np.full_like(calculated, BACKGROUND)
    fit = Fit(TWO_THETA, observed + background, calculated + background, background)
    weights = 1.0 / np.maximum(fit.observed, 1.0)  # as model.rietveld_model's, relative
    gof = float(np.sqrt(np.mean(weights * fit.difference**2)))  # scales them to the noise
    report = RefinementReport([], [], 0.0, [], [], weights, instrument)
    return SolveResult(tuple(structure.lattice.parameters), "Pnma", 62, "orthorhombic", [], 5.0, 4.0, gof,
                       fit=fit, structure=structure, refinement=report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    structure = perovskite()
    result = refined_result(structure)
    with_maps(result)  # warm-up: imports, spglib, torch kernels
    cmed(structure)
    maps_s = statistics.median(timeit.repeat(lambda: with_maps(result), number=1, repeat=args.repeats))
    cmed_s = statistics.median(timeit.repeat(lambda: cmed(structure), number=1, repeat=args.repeats))
    done = with_maps(result)
    flip_s = statistics.median(timeit.repeat(lambda: with_charge_flipping(done), number=1, repeat=3))
    difference = done.maps["difference"]
    print(f"{len(structure)}-atom {structure.composition.reduced_formula} Pnma cell, {difference.n}³ map grid, "
          f"{len(TWO_THETA)} pattern points, median of {args.repeats}")
    print(f"all maps + peaks (with_maps): {maps_s:.3f} s   (target ≤ 0.5 s)")
    print(f"reference, one cmed (32³):    {cmed_s:.3f} s   ratio {maps_s / cmed_s:.1f}")
    print(f"charge-flipping map (with_charge_flipping, the solution shown only): {flip_s:.3f} s")
    print(f"difference map σ {map_sigma(difference):.3f} e/Å³, {len(done.map_peaks)} peaks/holes, "
          f"largest {done.map_peaks[0].height:+.3f} e/Å³ ({done.map_peaks[0].significance:+.1f} σ noise)")


if __name__ == "__main__":
    main()
