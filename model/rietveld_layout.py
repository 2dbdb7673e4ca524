"""The Rietveld parameter vector: what each number means, where it starts, and its bounds.

Shared by the phases (``Layout.slices``): BACKGROUND_TERMS Chebyshev coefficients ("bkg"), the
zero shift and sample displacement (degrees 2θ), the TCH widths U V W X Y ("profile"), the
Bérar–Baldinozzi asymmetry (P1, P2), the beam's polarisation and the Kα2/Kα1 intensity ratio
("ka2") — the refined model.instrument.Instrument. Per phase (``Phase.slices``): the log of its
scale, its metric tensor's coefficients on the space group's basis ("cell"), the free Wyckoff
coordinates ("xyz"), one Biso (Å²) per element and a March–Dollase ratio ("po"). A Phase also
turns its parameters into the cell's metric and fractional coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from pymatgen.core import Structure

from model import constraints, scattering, simulate
from model.errors import InputError
from model.instrument import KA2_RATIO, Instrument, doublet_of
from model.pattern import Wavelength
from model.structure import atomic_radius_A

BACKGROUND_TERMS = 8
BISO_BOUNDS = (0.0, 8.0)  # Å²; a displacement parameter is a mean square amplitude, never negative
PO_BOUNDS = (0.4, 2.5)  # March–Dollase ratio
# anti-bump restraints (solve candidates): fully occupied atoms refined closer than this × the sum
# of their atomic radii are pushed apart (the shared real structures keep ≥ 0.72 × bar partially
# occupied sites; measured: a TiPbO3 candidate refined its O to 1.15 Å from Pb, 0.48 ×, and won)
CONTACT_FACTOR = 0.7
SHARED = {"bkg": BACKGROUND_TERMS, "zero": 1, "displacement": 1, "profile": 5, "asymmetry": 2,
          "polarisation": 1, "ka2": 1}
PROFILE = ("u", "v", "w", "x", "y")


class Phase:
    """One structure of the problem: constraints, reflections (hkl families) and parameter slices."""

    def __init__(self, structure: Structure, d_min_A: float, source: str | None):
        self.structure = structure
        self.ops = constraints.space_group_ops(structure)
        self.orbits = constraints.site_orbits(structure, self.ops)
        self.metric_basis = torch.tensor(constraints.metric_basis(self.ops))
        self.elements = sorted({symbol(site) for site in structure})
        metric0 = structure.lattice.metric_tensor
        self.coeffs0 = np.array([float(np.sum(metric0 * e) / np.sum(e * e)) for e in self.metric_basis.numpy()])
        self.hkl_np, mult = constraints.hkl_families(metric0, self.ops, d_min_A)
        if len(self.hkl_np) == 0:
            raise InputError(source, f"no reflection of {structure.composition.reduced_formula} "
                                     "falls in the measured 2θ range")
        self.hkl = torch.tensor(self.hkl_np, dtype=torch.float64)
        self.mult = torch.tensor(mult)
        laue = np.concatenate([self.ops.rotations, -self.ops.rotations])
        # every Laue image of each family: a line's preferred-orientation factor is their mean
        self.images = torch.tensor(np.einsum("ri,nij->rnj", self.hkl_np, laue), dtype=torch.float64)
        self.po_candidates = simulate.distinct_po_directions(laue)
        self.po_direction: tuple[int, int, int] | None = None

        self.atom_order = np.concatenate([o.atom_indices for o in self.orbits])
        self.occupancy = torch.tensor([occupancy(structure[i]) for i in self.atom_order])
        self.ff = torch.tensor(scattering.form_factor_coeffs([symbol(structure[i]) for i in self.atom_order]))
        self.biso_index = torch.tensor([self.elements.index(symbol(structure[i])) for i in self.atom_order])
        self.rotations = [torch.tensor(o.rotations, dtype=torch.float64) for o in self.orbits]
        radii = np.array([atomic_radius_A(symbol(structure[i])) for i in self.atom_order])
        full = self.occupancy.numpy() >= 1 - 1e-6
        pairs = np.triu(np.outer(full, full), k=1)
        self.contact_pairs = torch.tensor(np.array(np.nonzero(pairs)), dtype=torch.long)
        self.contact_limits = torch.tensor(CONTACT_FACTOR * (radii[:, None] + radii[None, :])[pairs])
        self.sizes = {"scale": 1, "cell": len(self.coeffs0), "xyz": sum(o.basis.shape[1] for o in self.orbits),
                      "biso": len(self.elements), "po": 1}
        self.slices: dict[str, slice] = {}

    def metric(self, p: torch.Tensor) -> torch.Tensor:
        return torch.einsum("k,kij->ij", p[self.slices["cell"]], self.metric_basis)

    def frac_coords(self, p: torch.Tensor) -> torch.Tensor:
        free = p[self.slices["xyz"]]
        coords, offset = [], 0
        for orbit, rotations in zip(self.orbits, self.rotations):
            k = orbit.basis.shape[1]
            x = torch.tensor(orbit.x0) + torch.tensor(orbit.basis) @ free[offset:offset + k]
            offset += k
            coords.append(torch.einsum("mij,j->mi", rotations, x) + torch.tensor(orbit.translations))
        return torch.cat(coords)


class Layout:
    """Slices of the parameter vector: the shared ones (SHARED), then each phase's (Phase.sizes)."""

    def __init__(self, phases: Sequence[Phase]):
        self.phases = list(phases)
        self.slices: dict[str, slice] = {}
        offset = 0
        for name, size in SHARED.items():
            self.slices[name] = slice(offset, offset + size)
            offset += size
        for phase in self.phases:
            for name, size in phase.sizes.items():
                phase.slices[name] = slice(offset, offset + size)
                offset += size
        self.size = offset
        # parameters only one phase's peaks depend on
        self.owner = {i: k for k, ph in enumerate(self.phases) for name in ("cell", "xyz", "biso", "po")
                      for i in range(ph.slices[name].start, ph.slices[name].stop)}

    def start(self, instrument: Instrument) -> np.ndarray:
        """The vector at the instrument's values and each phase's structure (the scales and
        background are left 0 for a linear least-squares start). The Kα2 ratio is the
        instrument's, or KA2_RATIO where it has no Kα2 (for a doublet term to start from)."""
        p = np.zeros(self.size)
        p[self.slices["zero"]] = instrument.zero
        p[self.slices["displacement"]] = instrument.displacement
        p[self.slices["profile"]] = [getattr(instrument, name) for name in PROFILE]
        p[self.slices["asymmetry"]] = instrument.asymmetry
        p[self.slices["polarisation"]] = instrument.polarisation
        doublet = instrument.doublet
        p[self.slices["ka2"]] = KA2_RATIO if doublet is None else doublet[1]
        for phase in self.phases:
            p[phase.slices["cell"]] = phase.coeffs0
            p[phase.slices["biso"]] = [mean_biso(phase.structure, e) for e in phase.elements]
            p[phase.slices["po"]] = 1.0
        return p

    def instrument(self, p: np.ndarray, wavelength: Wavelength, two_theta_range: tuple[float, float]) -> Instrument:
        """The Instrument the vector describes, at ``wavelength`` (its Kα2 ratio the vector's)."""
        if doublet_of(wavelength) is not None:
            wavelength = replace(wavelength, ratio=float(p[self.slices["ka2"]][0]))
        widths = dict(zip(PROFILE, map(float, p[self.slices["profile"]])))
        return Instrument(wavelength, **widths, zero=float(p[self.slices["zero"]][0]),
                          displacement=float(p[self.slices["displacement"]][0]),
                          asymmetry=tuple(float(v) for v in p[self.slices["asymmetry"]]),
                          polarisation=float(p[self.slices["polarisation"]][0]),
                          two_theta_range=two_theta_range)

    def indices(self, names: Sequence[str], doublet: bool) -> np.ndarray:
        """Parameter indices of the named groups (a phase group in every phase; preferred
        orientation only in phases that have a direction, Kα2 only with a ``doublet``)."""
        index = np.arange(self.size)
        parts = []
        for name in names:
            if name in self.slices:
                if name != "ka2" or doublet:
                    parts.append(index[self.slices[name]])
                continue
            parts += [index[ph.slices[name]] for ph in self.phases if name != "po" or ph.po_direction is not None]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=int)

    def bounds(self, p: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the free parameters; cell and coordinates within a step of ``p``."""
        lower = np.full(p.size, -np.inf)
        upper = np.full(p.size, np.inf)

        def bound(where: slice, low, high):
            lower[where], upper[where] = low, high

        bound(self.slices["profile"], [0.0, -1.0, 1e-6, 0.0, 0.0], [2.0, 1.0, 1.0, 1.0, 1.0])
        bound(self.slices["zero"], -0.5, 0.5)
        bound(self.slices["displacement"], -1.0, 1.0)
        bound(self.slices["asymmetry"], -0.5, 0.5)
        bound(self.slices["polarisation"], 0.0, 1.0)
        bound(self.slices["ka2"], 0.3, 0.7)
        for phase in self.phases:
            bound(phase.slices["biso"], *BISO_BOUNDS)
            bound(phase.slices["po"], *PO_BOUNDS)
            xyz = phase.slices["xyz"]
            bound(xyz, p[xyz] - 0.15, p[xyz] + 0.15)
            cell = phase.slices["cell"]
            span = np.abs(p[cell]) * 0.05 + 0.05
            bound(cell, p[cell] - span, p[cell] + span)
        return lower[free], upper[free]


def symbol(site) -> str:
    """The element of a site (its majority species)."""
    return max(site.species.items(), key=lambda kv: kv[1])[0].symbol


def occupancy(site) -> float:
    return float(sum(site.species.values()))


def mean_biso(structure: Structure, element: str) -> float:
    """The mean "biso" site property of an element's sites (Å²), 0.5 where none states one."""
    values = [site.properties.get("biso") for site in structure if symbol(site) == element]
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else 0.5
