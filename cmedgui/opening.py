"""Opening a file as the command line and the window do: a pattern file gives its scans; a
structure file gives its structure (conventional cell) and the pattern simulated from it
(model.simulate, Cu Kα unless a wavelength is given, on 5–90° 2θ in 0.02° steps)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from model.pattern import ANODES, Pattern, Provenance, Wavelength
from model.readers import read_file

if TYPE_CHECKING:
    from pymatgen.core import Structure

SIMULATED_TWO_THETA = np.round(np.arange(5.0, 90.0 + 1e-9, 0.02), 10)


@dataclass
class Opened:
    """What a file gave: its patterns and, for a structure file, the structure (conventional cell)."""

    patterns: list[Pattern]
    structure: Structure | None = None


def open_file(path: str | Path, wavelength: Wavelength | None = None) -> Opened:
    content = read_file(path, wavelength)
    if not isinstance(content, list):  # a structure; pymatgen is imported only when one is opened
        from model.structure import conventional_standard

        return Opened([simulated_pattern(str(path), content, wavelength)], conventional_standard(content))
    return Opened(content)


def simulated_pattern(source: str, structure: Structure, wavelength: Wavelength | None = None) -> Pattern:
    """The powder pattern of a structure opened from ``source``, as a file would hold it."""
    from model.instrument import Instrument
    from model.simulate import (
        simulate_pattern,  # torch: imported only when a structure is opened
    )

    wavelength = wavelength or ANODES["CuKa"]
    simulated = simulate_pattern(structure, Instrument(wavelength), SIMULATED_TWO_THETA)
    provenance = Provenance(source, "cif (simulated)", {**simulated.provenance.metadata, "simulated": True,
                                                            "intensity_unit": "arbitrary"})
    return Pattern(simulated.two_theta, simulated.intensity, None, wavelength, provenance)
