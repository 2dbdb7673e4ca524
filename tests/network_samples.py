"""Small training samples for the network tests, made from textbook prototypes (not shared data),
in the form model.data.CMEDDataset returns."""

from __future__ import annotations

import numpy as np
import torch
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from model.density import cmed
from model.metrics import CRYSTAL_SYSTEMS
from model.scattering import reflections
from model.structure import conventional_standard

PROTOTYPES = [
    ("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    ("Pm-3m", Lattice.cubic(4.11), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    ("P4/mmm", Lattice.tetragonal(3.99, 4.03), ["Ba", "Ti", "O", "O"],
     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5]]),
    ("P6_3/mmc", Lattice.hexagonal(3.21, 5.21), ["Mg"], [[1 / 3, 2 / 3, 0.25]]),
]


def structure(i: int) -> Structure:
    sg, lattice, species, coords = PROTOTYPES[i]
    return conventional_standard(Structure.from_spacegroup(sg, lattice, species, coords))


def sample(i: int) -> dict:
    s = structure(i)
    lines = reflections(s, 0.5)
    composition = np.zeros(119, dtype=np.float32)
    for element, fraction in s.composition.fractional_composition.items():
        composition[element.Z] = fraction
    arrays = {"cmed": cmed(s, 32, conventional=False).values.astype(np.float16), "composition": composition,
              "lattice": np.array(s.lattice.parameters, dtype=np.float32),
              "crystal_system": np.int64(CRYSTAL_SYSTEMS.index(SpacegroupAnalyzer(s).get_crystal_system())),
              "refl_d": lines.d.astype(np.float32), "refl_f2": lines.f2.astype(np.float32),
              "refl_mult": lines.multiplicity.astype(np.int64), "refl_hkl": lines.hkl.astype(np.int64)}
    return {key: torch.as_tensor(value) for key, value in arrays.items()}


def phasing_pack(tokens: int = 48) -> dict:
    """The PROTOTYPES as a packed phasing split (model.data.pack layout)."""
    from model.data.pack import _tensors
    from model.nets import reciprocal

    items = []
    for i in range(len(PROTOTYPES)):
        s = structure(i)
        sg = SpacegroupAnalyzer(s, symprec=0.01).get_space_group_number()
        hkl, mult, d = reciprocal.families(s.lattice.matrix, sg, 0.8, tokens)
        f = reciprocal.structure_factors(s, hkl, d)
        items.append((hkl, mult, np.stack([f.real, f.imag], 1), np.array(s.lattice.parameters), sg,
                      s.composition.reduced_formula))
    return _tensors(items, tokens)
