"""One training sample: a sane structure in its conventional standard cell and every array the
network needs (CMED, composition, lattice, symmetry, wavelength-free reflections, and the complex
structure factors of the reflection families that learned phasing predicts)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Structure
from pymatgen.io.cif import CifWriter
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from model.data.prototype import framework, structure_type
from model.data.sanity import sanity_problem
from model.data.sources import Candidate
from model.data.systems import CRYSTAL_SYSTEMS, SYMPREC, crystal_system_code
from model.density import cmed
from model.nets import reciprocal
from model.scattering import reflections
from model.structure import conventional_standard

GRID = 32
# d_min 0.5 Å covers Mo Kα (0.7107 Å) to 2θ ≈ 90° and Cu Kα (1.5406 Å) to 2θ = 180° (d = λ/2).
D_MIN_A = 0.5
N_ELEMENTS = 119  # composition vector length, index = Z, 0 unused
# Reflection families for phasing: to 0.8 Å (beyond any lab pattern's useful range), the first
# MAX_FAMILIES by angle (a 25 Å cell has ~10⁴ families to 0.8 Å; the network reads at most a few hundred).
FAMILY_D_MIN_A = 0.8
MAX_FAMILIES = 384


@dataclass(frozen=True, eq=False)
class Sample:
    """Arrays in the shard layout (see model.data.store) plus the manifest fields."""

    id: str
    source: str
    origin: str
    structure_type: str
    formula: str
    spacegroup: int
    crystal_system: int
    natoms: int
    cif: str
    composition: np.ndarray  # (119,) float32 atom fractions by Z
    lattice: np.ndarray  # (6,) float32 a, b, c Å, α, β, γ degrees
    cmed: np.ndarray  # (32, 32, 32) float16 e/Å³
    refl_d: np.ndarray  # (R,) float32 Å
    refl_f2: np.ndarray  # (R,) float32 e², mean |F|² of the line
    refl_mult: np.ndarray  # (R,) int16
    refl_hkl: np.ndarray  # (R, 3) int16
    fam_hkl: np.ndarray  # (P, 3) int16 family representatives (model.nets.reciprocal.families)
    fam_mult: np.ndarray  # (P,) int16
    fam_f: np.ndarray  # (P, 2) float32 real, imaginary F in electrons, no thermal motion


def make_sample(sample_id: str, candidate: Candidate, systems: tuple[str, ...],
                forbidden: frozenset[tuple[str, int]] = frozenset(),
                forbidden_types: frozenset[str] = frozenset()) -> Sample | str:
    """The sample, or why the candidate is rejected ("rule: details"; sanity, symmetry, crystal
    system, evaluation set).

    ``forbidden`` holds (reduced formula, space group) pairs and ``forbidden_types`` structure
    types (model.data.prototype.framework) that must never become targets.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            structure = conventional_standard(candidate.structure, symprec=SYMPREC)
        except Exception as exc:  # noqa: BLE001 - spglib fails on degenerate cells in several ways
            return f"symmetry: detection failed ({type(exc).__name__})"
        problem = sanity_problem(structure)
        if problem:
            return problem
        analyzer = SpacegroupAnalyzer(structure, symprec=SYMPREC)
        spacegroup = analyzer.get_space_group_number()
        system = crystal_system_code(spacegroup)
        if CRYSTAL_SYSTEMS[system] not in systems:
            return f"system: {CRYSTAL_SYSTEMS[system]} not requested"
        formula = structure.composition.reduced_formula
        if (formula, spacegroup) in forbidden:
            return f"evaluation: {formula} in space group {spacegroup} is an evaluation structure"
        try:
            label = structure_type(analyzer)
        except ValueError:
            return "symmetry: Wyckoff multiplicities do not match the composition"
        if framework(label) in forbidden_types:
            return f"evaluation: structure type {label} is the type of an evaluation structure"
        if not reciprocal.obeys(structure, spacegroup):
            return "symmetry: the cell is not in the standard setting of its space group"
        density = cmed(structure, n=GRID, conventional=False).values.astype(np.float16)
        if not np.isfinite(density).all():
            return "density: CMED beyond the float16 range"
        return Sample(
            id=sample_id, source=candidate.source, origin=candidate.origin,
            structure_type=label, formula=formula, spacegroup=spacegroup,
            crystal_system=system, natoms=len(structure), cif=str(CifWriter(structure)),
            composition=composition_vector(structure), lattice=lattice_parameters(structure),
            cmed=density,
            **_reflection_arrays(structure), **_family_arrays(structure, spacegroup),
        )


def composition_vector(structure: Structure) -> np.ndarray:
    vector = np.zeros(N_ELEMENTS, dtype=np.float32)
    composition = structure.composition
    for element in composition.elements:
        vector[element.Z] = composition.get_atomic_fraction(element)
    return vector


def lattice_parameters(structure: Structure) -> np.ndarray:
    return np.array(structure.lattice.parameters, dtype=np.float32)


def _reflection_arrays(structure: Structure) -> dict[str, np.ndarray]:
    lines = reflections(structure, D_MIN_A)
    return {"refl_d": lines.d.astype(np.float32), "refl_f2": lines.f2.astype(np.float32),
            "refl_mult": lines.multiplicity.astype(np.int16), "refl_hkl": lines.hkl.astype(np.int16)}


def _family_arrays(structure: Structure, spacegroup: int) -> dict[str, np.ndarray]:
    hkl, mult, d = reciprocal.families(structure.lattice.matrix, spacegroup, FAMILY_D_MIN_A, MAX_FAMILIES)
    f = reciprocal.structure_factors(structure, hkl, d)
    return {"fam_hkl": hkl.astype(np.int16), "fam_mult": mult.astype(np.int16),
            "fam_f": np.stack([f.real, f.imag], axis=1).astype(np.float32)}
