"""What a Rietveld refinement returns: the refined structures, the refined instrument and the fit,
and the SolveResult that reports it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer, SymmetryUndeterminedError

from model import constraints
from model.instrument import Instrument
from model.result import Fit, RefinementReport, Reflection, Site, SolveResult


@dataclass
class RefinedPhase:
    """One refined structure: its cell and atoms, symmetry, reflections (ticks), mass fraction of
    the crystalline sample (Hill–Howard) and preferred orientation (reciprocal direction hkl and
    March–Dollase ratio) where it was kept."""

    structure: Structure
    space_group: constraints.SpaceGroupOps
    atoms: list[Site]
    reflections: list[Reflection]
    weight_fraction: float = 1.0
    preferred_orientation: tuple[tuple[int, int, int], float] | None = None


@dataclass
class Refinement:
    """A finished refinement: the phases (the first is the main one), agreement (%), fit, the
    refined instrument (its wavelength as modelled, e.g. the doublet behind a stated mean) and the
    optional terms kept (of model.refine.TERMS) and the refinement laid open (esds)."""

    phases: list[RefinedPhase]
    rwp: float
    rp: float
    gof: float
    fit: Fit
    instrument: Instrument
    terms: list[str] = field(default_factory=list)
    report: RefinementReport | None = None  # parameters with esds, Rexp, R-Bragg (model.uncertainty)

    structure = property(lambda self: self.phases[0].structure, doc="the first phase's structure")
    space_group = property(lambda self: self.phases[0].space_group)
    atoms = property(lambda self: self.phases[0].atoms)
    reflections = property(lambda self: self.phases[0].reflections)


def to_solve_result(outcome: Refinement) -> SolveResult:
    """The first phase as a SolveResult (the others in its ``phases``), each cell with its origin
    moved to the space group's standard origin, so the Wyckoff coordinates read as in the
    International Tables (a common shift changes no intensity)."""
    results = []
    for phase in outcome.phases:
        ops = phase.space_group
        shift = _standard_origin(phase.structure)
        atoms = [replace(atom, xyz=tuple(float(v) for v in np.round(np.add(atom.xyz, shift), 10) % 1.0))
                 for atom in phase.atoms]
        lattice = tuple(float(v) for v in phase.structure.lattice.parameters)
        results.append(SolveResult(lattice=lattice, space_group=ops.symbol, space_group_number=ops.number,
                                   crystal_system=ops.crystal_system, atoms=atoms, rwp=outcome.rwp,
                                   rp=outcome.rp, gof=outcome.gof, reflections=phase.reflections,
                                   message=_description(outcome, phase), weight_fraction=phase.weight_fraction,
                                   structure=_cell(lattice, atoms)))
    main = results[0]
    main.fit = outcome.fit
    main.refinement = outcome.report
    main.phases = results[1:]
    return main


def _cell(lattice: tuple[float, ...], atoms: list[Site]) -> Structure:
    """The cell (lattice + every atom, occupancies kept, B in Å² as the site property "biso")."""
    return Structure(Lattice.from_parameters(*lattice), [{atom.element: atom.occupancy} for atom in atoms],
                     [atom.xyz for atom in atoms], site_properties={"biso": [atom.biso for atom in atoms]})


def _description(outcome: Refinement, phase: RefinedPhase) -> str:
    """The optional terms a refinement kept, in words."""
    instrument = outcome.instrument
    wl = instrument.wavelength
    words = []
    if "doublet" in outcome.terms:
        words.append(f"Kα1/Kα2 doublet {wl.ka1:.5f}/{wl.ka2:.5f} Å (the stated wavelength is their mean)")
    if "ka2" in outcome.terms:
        words.append(f"Kα2/Kα1 {instrument.doublet[1]:.3f}")
    if "displacement" in outcome.terms:
        words.append(f"sample displacement {instrument.displacement:+.4f}° × cos θ")
    if "asymmetry" in outcome.terms:
        words.append("asymmetry P1 {:+.4f} P2 {:+.4f}".format(*instrument.asymmetry))
    if "polarisation" in outcome.terms:
        words.append(f"beam polarised {instrument.polarisation:.2f} in the diffraction plane")
    if phase.preferred_orientation is not None:
        (h, k, l), ratio = phase.preferred_orientation
        words.append(f"March–Dollase r {ratio:.3f} along [{h} {k} {l}]*")
    return "; ".join(words)


def _standard_origin(structure: Structure) -> np.ndarray:
    """The fractional shift (in this cell's basis) that puts spglib's standard origin at 0 0 0;
    none where atoms closer than the tolerance leave spglib without a symmetry (a refined candidate
    can bring two atoms together)."""
    try:
        dataset = SpacegroupAnalyzer(structure, symprec=constraints.SYMPREC).get_symmetry_dataset()
    except SymmetryUndeterminedError:
        return np.zeros(3)
    return np.linalg.solve(np.asarray(dataset.transformation_matrix), np.asarray(dataset.origin_shift))


def matrix_from_metric(metric: np.ndarray) -> np.ndarray:
    """The lattice matrix (Å, pymatgen's orientation) of a metric tensor (Å²)."""
    a, b, c = np.sqrt(np.diag(metric))
    alpha = np.degrees(np.arccos(metric[1, 2] / (b * c)))
    beta = np.degrees(np.arccos(metric[0, 2] / (a * c)))
    gamma = np.degrees(np.arccos(metric[0, 1] / (a * b)))
    return Lattice.from_parameters(a, b, c, alpha, beta, gamma).matrix
