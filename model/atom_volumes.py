"""Volume per atom of each element in crystal structures (Å³), fitted to the cell volumes of the
shared real structures (scripts/fit_atom_volumes.py, after Hofmann, Acta Cryst. B58 (2002) 489):
a formula unit's volume is the sum of its atoms' volumes, within about 7 % for half of those
structures and 20 % for nine in ten. The indexed cell's volume then tells how many formula units
of a guessed stoichiometry fit in it, and how well."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

import numpy as np

TABLE = Path(__file__).resolve().parents[1] / "resources" / "atom_volumes.json"
FALLBACK_A3 = 15.0  # Å³, the middle of the usual 10–20 Å³ per atom, for an element the fit never saw
SPREAD = 0.145  # standard deviation of ln(cell volume / summed atom volumes) over the fitted structures


@cache
def atom_volumes_A3() -> dict[str, float]:
    """The bundled volume per atom (Å³) of each element fitted."""
    return {element: volume for element, (volume, _) in json.loads(TABLE.read_text()).items()}


def formula_volume_A3(units: Mapping[str, float]) -> float:
    """Volume (Å³) of one formula unit {element: amount}: the sum of its atoms' volumes."""
    volumes = atom_volumes_A3()
    return sum(amount * volumes.get(element, FALLBACK_A3) for element, amount in units.items())


def fit(cells: Iterable[tuple[Mapping[str, int], float]], bounds_A3: tuple[float, float] = (0.5, 200.0)
        ) -> dict[str, tuple[float, int]]:
    """Volume per atom (Å³) of each element and the number of cells holding it, fitted to
    (atoms per element, cell volume Å³) pairs by least squares on the relative misfit of the cell
    volumes, so small and large cells count alike."""
    from scipy.optimize import lsq_linear

    cells = list(cells)
    elements = sorted({element for atoms, _ in cells for element in atoms})
    column = {element: i for i, element in enumerate(elements)}
    design = np.zeros((len(cells), len(elements)))
    for row, (atoms, volume) in enumerate(cells):
        for element, count in atoms.items():
            design[row, column[element]] = count / volume
    volumes = lsq_linear(design, np.ones(len(cells)), bounds=bounds_A3).x
    held = (design > 0).sum(axis=0)
    return {element: (round(float(volumes[i]), 2), int(held[i])) for element, i in column.items()}


def spread(cells: Iterable[tuple[Mapping[str, int], float]], table: Mapping[str, tuple[float, int]]) -> float:
    """Standard deviation of ln(cell volume / summed atom volumes) over ``cells``."""
    misfits = [math.log(volume / sum(count * table[element][0] for element, count in atoms.items()))
               for atoms, volume in cells]
    return float(np.std(misfits))
