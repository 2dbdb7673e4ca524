"""What a solve produces (DESIGN.md §4) and the progress it reports on the way."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from model.instrument import Instrument

if TYPE_CHECKING:  # pymatgen is slow to import, and only the solve and refinement build a Structure
    from pymatgen.core import Structure


@dataclass(frozen=True)
class Progress:
    """One step of a long job: stage name, overall fraction done (0–1), a short message, and a
    map to show while the job goes on (a model.density.Density, e.g. what the network sees in the
    indexed cell)."""

    stage: str
    fraction: float
    message: str = ""
    preview: object | None = None


@dataclass(frozen=True)
class Site:
    """An atom: element symbol, fractional x y z, occupancy, isotropic B (Å²), its Wyckoff position
    as multiplicity in the cell + letter (e.g. "8c") and the index of its orbit (symmetry-equivalent
    atoms share one; None when the symmetry is not known, so the atom is an orbit of its own)."""

    element: str
    xyz: tuple[float, float, float]
    occupancy: float = 1.0
    biso: float = 0.5
    wyckoff: str = ""
    orbit: int | None = None


@dataclass(frozen=True)
class Fit:
    """Observed vs calculated profile on the pattern's x (degrees 2θ)."""

    two_theta: np.ndarray
    observed: np.ndarray
    calculated: np.ndarray
    background: np.ndarray

    @property
    def difference(self) -> np.ndarray:
        return self.observed - self.calculated


@dataclass(frozen=True)
class Reflection:
    """An hkl tick: Miller indices, position (degrees 2θ), d (Å)."""

    hkl: tuple[int, int, int]
    two_theta: float
    d: float


@dataclass(frozen=True)
class Parameter:
    """One refinable quantity as a crystallographer reads it: name (e.g. "a", "U", "Mg Biso"), the
    refinement group that frees or fixes it (model.refine's group names), the phase it belongs to
    (None: shared by the phases), value, esd (None where the last refinement did not refine it or
    left it on a bound), unit, and whether the last refinement refined it."""

    name: str
    group: str
    value: float
    esd: float | None = None
    unit: str = ""
    phase: int | None = None
    refined: bool = False


@dataclass
class RefinementReport:
    """The refinement laid open (model.uncertainty): parameters with esds from the least-squares
    covariance scaled by χ²_ν; per phase the (atoms, 3) esds of the fractional coordinates, in the
    order of that phase's ``atoms`` (0 where the symmetry fixes a coordinate, NaN where it was not
    refined); Rexp and R-Bragg per phase (%); the groups refined last; the least-squares weight of
    every point of the fit (0: excluded); and what a further refinement starts from: the refined
    instrument (its wavelength as modelled), the optional terms kept and each phase's preferred
    orientation (reciprocal direction, March–Dollase ratio)."""

    parameters: list[Parameter]
    xyz_esd: list[np.ndarray]
    rexp: float
    r_bragg: list[float]
    free: list[str]
    weights: np.ndarray
    instrument: Instrument
    terms: list[str] = field(default_factory=list)
    orientations: list[tuple[tuple[int, int, int], float] | None] = field(default_factory=list)


@dataclass
class SolveResult:
    """Lattice (a, b, c in Å; α, β, γ in degrees), symmetry, atoms, agreement, fit and density.

    ``structure`` is the refined cell (every atom, occupancies, B in Å² as the site property
    "biso"), the one stored structure (CIF, 3D view, density); ``atoms`` are its sites with their
    Wyckoff labels and orbits, and ``sites`` its asymmetric unit, one representative per orbit,
    for tables and reports. An attempt that refined nothing has no structure.
    """

    lattice: tuple[float, float, float, float, float, float]
    space_group: str
    space_group_number: int
    crystal_system: str
    atoms: list[Site]
    rwp: float  # %
    rp: float  # %
    gof: float
    fit: Fit | None = None
    reflections: list[Reflection] = field(default_factory=list)
    density: object | None = None  # model.density.Density
    model_version: str = ""
    device: str = ""
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    cpu_timings: dict[str, float] = field(default_factory=dict)  # CPU seconds per stage (model.solve._Stopwatch)
    solved: bool = True
    message: str = ""
    # the other candidates refined beside the winner (screening depth only), best Rwp first
    alternatives: list[SolveResult] = field(default_factory=list)
    # multi-phase Rietveld: this phase's mass fraction of the crystalline sample, and the other
    # phases refined together with it against the same pattern (their fit is this one's)
    weight_fraction: float = 1.0
    phases: list[SolveResult] = field(default_factory=list)
    structure: Structure | None = None
    refinement: RefinementReport | None = None  # the phases' (this one first) parameters and esds
    # Fourier maps of the refined structure (model.fourier), keyed by model.density.MAP_KINDS, and
    # the difference map's peaks and holes (model.fourier.MapPeak), strongest |height| first
    maps: dict[str, object] = field(default_factory=dict)
    map_peaks: list = field(default_factory=list)
    verdict: object | None = None  # model.verdict.Evidence: what solved (or not) rests on

    @property
    def formula(self) -> str:
        """The refined cell's reduced formula, the name of a phase ("" where nothing was refined)."""
        return "" if self.structure is None else self.structure.composition.reduced_formula

    @property
    def sites(self) -> list[Site]:
        """One atom per Wyckoff orbit, in the order of ``atoms``; the representative is the member
        with the smallest (x, y, z), so e.g. Mg2Si's 8c Mg is shown at ¼ ¼ ¼."""
        orbits: dict[object, list[Site]] = {}
        for index, atom in enumerate(self.atoms):
            orbits.setdefault(("atom", index) if atom.orbit is None else atom.orbit, []).append(atom)
        return [min(members, key=lambda a: a.xyz) for members in orbits.values()]
