"""Regenerates CeO2_CuKa.xy, the bundled example: ceria (fluorite, Fm-3m, a = 5.4113 Å) as a
Cu Kα laboratory diffractometer records it (Kα1 + Kα2, TCH peak shapes, Chebyshev background,
small zero shift, Poisson counting noise), simulated by model.simulate with a fixed seed.

Run: python resources/examples/make_example.py
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure

from model.exporters import export
from model.instrument import Instrument
from model.pattern import ANODES, Provenance
from model.simulate import Sample, simulate_pattern

OUT = Path(__file__).with_name("CeO2_CuKa.xy")
A_CEO2 = 5.4113  # Å, ceria lattice parameter (NIST SRM 674b certificate value, 5.4113 Å)
SEED = 674


def ceria() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(A_CEO2), ["Ce", "O"],
                                     [[0, 0, 0], [0.25, 0.25, 0.25]])


def main() -> None:
    wavelength = ANODES["CuKa"]
    two_theta = np.arange(15.0, 120.0 + 1e-9, 0.02)
    instrument = Instrument(wavelength, u=0.012, v=-0.006, w=0.005, x=0.035, y=0.01, zero=0.015)
    sample = Sample(background=(0.04, -0.015, 0.008), scale=1000.0, counts=2.0e4)
    pattern = simulate_pattern(ceria(), instrument, two_theta, sample, np.random.default_rng(SEED))
    description = f"CeO2 fluorite Fm-3m a={A_CEO2} A, Cu Ka lab profile, seed {SEED}"
    export(OUT, dataclasses.replace(pattern, provenance=Provenance(description, "simulated")))
    print(f"wrote {OUT} ({len(pattern)} points)")


if __name__ == "__main__":
    main()
