"""The search's score of trial placements: an intensity R factor on the extracted clusters plus
penalties, in torch, for many trials at once and differentiable in the free coordinates.

Σ multiplicity·LP·|F|² of each cluster (model.extraction) is compared with its observed intensity
at the least-squares scale, with the smooth error of the background fitted alongside, and at the
best of a few overall displacement factors B and March–Dollase preferred orientations. Penalties
(Å²) keep atoms apart and near a neighbour.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from pymatgen.core import Lattice, Structure

from model import constraints, scattering, simulate
from model.extraction import Clusters
from model.structure import atomic_radius_A
from model.wyckoff import orbits

BACKGROUND_CLUSTERS = 6  # clusters needed per background term
OVERALL_B = (0.5, 2.5)  # Å², overall displacement factors tried for every trial
# March–Dollase preferred orientation tried for every trial: ratios along each low-index direction
TEXTURE_RATIOS = (0.75, 1.35)
CLOSE_FACTOR = 0.55  # atoms closer than this × (r_i + r_j) are penalised (atomic radii, Å)
# an atom whose nearest neighbour is farther than this × (r_i + r_j) is penalised (no bond): the
# shared real structures have every atom within 1.3 × of a neighbour, bar molecular oddities
LONELY_FACTOR = 1.3
CHUNK = 1 << 21  # trial × atom × reflection entries evaluated at once (memory, cancel latency)


@dataclass(frozen=True)
class Arm:
    """One search problem: a cell (zero shift in deg 2θ), a space group in its standard setting
    and the number of atoms of each species in the cell."""

    lattice: Lattice
    zero: float
    space_group: int
    species: tuple[str, ...]
    counts: tuple[int, ...]
class Placed(Protocol):
    """Sites (species index, orbit index) with their free coordinates, in site order."""

    sites: tuple[tuple[int, int], ...]
    coords: np.ndarray


@dataclass(frozen=True)
class Layout:
    """Atoms of a list of sites: atom j at offsets[j] + basis[j] @ p; species index of each atom."""

    offsets: np.ndarray  # (A, 3)
    basis: np.ndarray  # (A, 3, P)
    kinds: np.ndarray  # (A,)

    @property
    def dof(self) -> int:
        return self.basis.shape[2]

    def positions(self, coords: np.ndarray) -> np.ndarray:
        return self.offsets + np.einsum("aip,p->ai", self.basis, coords)

@dataclass
class Batch:
    """Free atoms of n trials, padded to A atoms and P parameters (mask 0 on padding)."""

    offsets: torch.Tensor  # (n, A, 3)
    basis: torch.Tensor  # (n, A, 3, P)
    kinds: torch.Tensor  # (n, A) species index
    mask: torch.Tensor  # (n, A)
    mixed: torch.Tensor  # (n,) more than one element among the atoms
    # (n, A, R) each atom's scattering factor at each reflection, 0 on padding: looked up once per
    # batch, not at every step of a descent
    f: torch.Tensor

    def take(self, rows) -> Batch:
        return Batch(self.offsets[rows], self.basis[rows], self.kinds[rows], self.mask[rows], self.mixed[rows],
                     self.f[rows])


@dataclass
class Fixed:
    """Atoms already placed in n trials: their structure factor, positions and own penalty."""

    re: torch.Tensor  # (n, R)
    im: torch.Tensor  # (n, R)
    pos: torch.Tensor  # (n, Q, 3)
    kinds: torch.Tensor  # (n, Q)
    mask: torch.Tensor  # (n, Q)
    penalty: torch.Tensor  # (n,)

    @classmethod
    def empty(cls, n: int, reflections: int) -> Fixed:
        none = torch.zeros(n, 0)
        return cls(torch.zeros(n, reflections), torch.zeros(n, reflections), torch.zeros(n, 0, 3),
                   none.long(), none, torch.zeros(n))

    def take(self, rows) -> Fixed:
        return Fixed(self.re[rows], self.im[rows], self.pos[rows], self.kinds[rows], self.mask[rows],
                      self.penalty[rows])


class Problem:
    """One arm's reflections, observed clusters and cost function, as torch tensors."""

    def __init__(self, arm: Arm, refl: Clusters, textures: np.ndarray):
        """``refl`` and ``textures`` (textures of its reflections) of the arm's cell and group."""
        self.arm = arm
        self.orbits = orbits(arm.space_group)
        self.valid = len(refl.d) > 0 and bool(np.any(refl.observed > 0))
        dtype = torch.float32
        self.hkl = torch.tensor(refl.hkl, dtype=dtype)
        d = torch.tensor(refl.d, dtype=torch.float64)
        coeffs = torch.tensor(scattering.form_factor_coeffs(list(arm.species)))
        self.f = scattering.form_factors_torch(d, coeffs).T.to(dtype)  # (S, R)
        # every combination of an overall B and a preferred orientation: (K, R) weights on |F|²
        b = torch.tensor(OVERALL_B, dtype=torch.float64)[:, None, None]
        texture = torch.tensor(textures)[None]
        self.textures = texture.shape[1]  # the first is none
        weight = torch.tensor(refl.weight) * torch.exp(-b / (2 * d**2)) * texture
        self.weights = weight.reshape(-1, len(refl.d)).to(dtype)
        self.group = torch.tensor(refl.group)
        self.clusters = refl.observed.size
        # the score fits scale and background together: both vectors are projected off the
        # background columns (at most one per BACKGROUND_CLUSTERS clusters, so it cannot fit the peaks)
        terms = min(refl.background.shape[1], refl.observed.size // BACKGROUND_CLUSTERS)
        basis = np.linalg.qr(refl.background[:, :terms])[0] if terms else np.zeros((refl.observed.size, 0))
        self.background = torch.tensor(basis, dtype=dtype)
        observed = torch.tensor(refl.observed, dtype=dtype)
        observed = observed - self.background @ (self.background.T @ observed)
        self.observed = observed / observed.norm().clamp_min(1e-30)
        self.matrix = torch.tensor(arm.lattice.matrix, dtype=dtype)
        radii = np.array([atomic_radius_A(s) for s in arm.species])
        self.radius_sum = torch.tensor(radii[:, None] + radii[None, :], dtype=dtype)
        self.pair_min = CLOSE_FACTOR * self.radius_sum
        self.atoms = sum(arm.counts)
        # the fractional difference wrapped into ±½ is the shortest vector only between right
        # angles; along oblique axes the neighbouring images are checked as well
        angles = arm.lattice.angles
        oblique = [not (np.isclose(angles[(i + 1) % 3], 90) and np.isclose(angles[(i + 2) % 3], 90))
                   for i in range(3)]
        self.images = torch.tensor(list(itertools.product(*[(-1, 0, 1) if o else (0,) for o in oblique])),
                                   dtype=dtype)

    def layout(self, sites: Sequence[tuple[int, int]]) -> Layout:
        total = sum(self.orbits[k].dof for _, k in sites)
        offsets, blocks, kinds, used = [np.zeros((0, 3))], [np.zeros((0, 3, total))], [np.zeros(0, int)], 0
        for species, k in sites:
            orbit = self.orbits[k]
            block = np.zeros((orbit.offsets.shape[0], 3, total))
            block[:, :, used:used + orbit.dof] = orbit.basis
            used += orbit.dof
            offsets.append(orbit.offsets)
            blocks.append(block)
            kinds.append(np.full(orbit.offsets.shape[0], species))
        return Layout(np.concatenate(offsets), np.concatenate(blocks), np.concatenate(kinds))

    def score(self, coords: torch.Tensor, free: Batch, fixed: Fixed, texture: bool = True) -> torch.Tensor:
        """(n,) cluster R (at the best overall B and, with ``texture``, preferred orientation) +
        close-contact and loneliness penalties of n trials."""
        weights = self.weights if texture else self.weights[::self.textures]
        pos = free.offsets + torch.einsum("naip,np->nai", free.basis, coords)  # (n, A, 3)
        phase = (2 * torch.pi) * (pos @ self.hkl.T)  # (n, A, R)
        re = (free.f * torch.cos(phase)).sum(1) + fixed.re
        im = (free.f * torch.sin(phase)).sum(1) + fixed.im
        per_reflection = (re * re + im * im)[:, None, :] * weights
        calc = per_reflection.new_zeros(len(coords), len(weights), self.clusters)
        calc = calc.index_add_(2, self.group, per_reflection)
        calc = calc - (calc @ self.background) @ self.background.T
        # R² = 1 − cos²(calc, observed) at the least-squares scale
        cosine = (calc @ self.observed) / calc.norm(dim=-1).clamp_min(1e-30)
        r = torch.sqrt((1 - cosine.square()).clamp_min(1e-12)).min(dim=1).values
        return r + fixed.penalty + self.penalty(pos, free, fixed)

    def penalty(self, pos: torch.Tensor, free: Batch, fixed: Fixed) -> torch.Tensor:
        """(n,) close contacts (Å²) of the free atoms at ``pos`` among themselves and with the fixed
        ones, and their loneliness (Å² per atom of the cell)."""
        inner = self._distances(pos, pos)
        outer = self._distances(pos, fixed.pos)
        both = free.mask[:, :, None] * free.mask[:, None, :]
        contact = (self._short(inner, free.kinds, free.kinds) * both).triu(diagonal=1).sum((1, 2)) + (
            self._short(outer, free.kinds, fixed.kinds) * free.mask[:, :, None] * fixed.mask[:, None, :]).sum((1, 2))
        # loneliness: the free atoms' distance to their nearest neighbour beyond bonding reach.
        # Not judged while one element stands alone (heavy atoms alone are far apart by nature)
        eye = torch.eye(pos.shape[1], dtype=torch.bool)
        reach = torch.cat([
            torch.where((both > 0) & ~eye, inner - LONELY_FACTOR * self.radius_sum[free.kinds[:, :, None],
                                                                                   free.kinds[:, None, :]], torch.inf),
            torch.where(fixed.mask[:, None, :] > 0, outer - LONELY_FACTOR * self.radius_sum[
                free.kinds[:, :, None], fixed.kinds[:, None, :]], torch.inf)], dim=2).min(dim=2).values
        several = (fixed.mask.sum(1) > 0) | free.mixed
        lonely = torch.where(torch.isfinite(reach), reach, 0).clamp_min(0).square() * free.mask
        return contact + several * lonely.sum(1) / self.atoms

    def rows(self, batch: Batch) -> int:
        """Trials per evaluation, so that one holds about CHUNK entries (phases and weighted |F|²)."""
        return max(1, CHUNK // (len(self.hkl) * (batch.offsets.shape[1] + len(self.weights))))

    def _distances(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(n, A, B) shortest distances (Å, periodic images included) between atoms of a and b."""
        delta = a[:, :, None, :] - b[:, None, :, :]
        delta = delta - torch.round(delta)
        if len(self.images) == 1:  # right angles: the wrapped difference is the shortest, no images to try
            return torch.sqrt((delta @ self.matrix).square().sum(-1) + 1e-6)
        cart = (delta[..., None, :] + self.images) @ self.matrix
        return torch.sqrt(cart.square().sum(-1) + 1e-6).min(dim=-1).values

    def _short(self, dist: torch.Tensor, kinds_a: torch.Tensor, kinds_b: torch.Tensor) -> torch.Tensor:
        """max(0, pair_min − distance)² (Å²) of each pair."""
        return (self.pair_min[kinds_a[:, :, None], kinds_b[:, None, :]] - dist).clamp_min(0).square()

    def batch(self, layouts: Sequence[Layout]) -> Batch:
        width = max(max(lay.offsets.shape[0] for lay in layouts), 1)
        dof = max(max(lay.dof for lay in layouts), 1)
        n = len(layouts)
        offsets, basis = np.zeros((n, width, 3)), np.zeros((n, width, 3, dof))
        kinds, mask = np.zeros((n, width), dtype=int), np.zeros((n, width))
        for i, lay in enumerate(layouts):
            a = lay.offsets.shape[0]
            offsets[i, :a], basis[i, :a, :, :lay.dof], kinds[i, :a], mask[i, :a] = lay.offsets, lay.basis, lay.kinds, 1
        mixed = [len(set(lay.kinds)) > 1 for lay in layouts]
        kinds, mask = torch.tensor(kinds), torch.tensor(mask, dtype=torch.float32)
        return Batch(torch.tensor(offsets, dtype=torch.float32), torch.tensor(basis, dtype=torch.float32),
                     kinds, mask, torch.tensor(mixed), self.f[kinds] * mask[..., None])

    def fixed(self, parents: Sequence[Placed]) -> Fixed:
        """The placed atoms of each parent (computed once per distinct parent)."""
        distinct = {id(p): p for p in parents}
        layouts = {key: self.layout(p.sites) for key, p in distinct.items()}
        width = max(max(lay.offsets.shape[0] for lay in layouts.values()), 1)
        rows = {key: n for n, key in enumerate(distinct)}
        batch = self.batch(list(layouts.values()))
        pos = np.zeros((len(distinct), width, 3))
        for key, p in distinct.items():
            lay = layouts[key]
            pos[rows[key], :lay.offsets.shape[0]] = lay.positions(p.coords)
        pos = torch.tensor(pos, dtype=torch.float32)
        phase = (2 * torch.pi) * (pos @ self.hkl.T)
        re, im = (batch.f * torch.cos(phase)).sum(1), (batch.f * torch.sin(phase)).sum(1)
        own = self.penalty(pos, batch, Fixed.empty(len(distinct), len(self.hkl)))
        index = torch.tensor([rows[id(p)] for p in parents])
        return Fixed(re, im, pos, batch.kinds, batch.mask, own).take(index)

    def structure(self, sites: Sequence[tuple[int, int]], coords: np.ndarray) -> Structure:
        lay = self.layout(sites)
        return Structure(self.arm.lattice, [self.arm.species[k] for k in lay.kinds], lay.positions(coords) % 1.0)

def textures(hkl: np.ndarray, lattice: Lattice, ops: constraints.SpaceGroupOps) -> np.ndarray:
    """(T, R) March–Dollase factors (r²cos²α + sin²α/r)^(−3/2) of each hkl family, averaged over its
    members: no texture, then each ratio along each symmetry-distinct low-index reciprocal direction."""
    laue = np.concatenate([ops.rotations, -ops.rotations])
    reciprocal = lattice.reciprocal_lattice_crystallographic.matrix
    members = np.einsum("ri,nij->rnj", hkl, laue) @ reciprocal  # (R, N, 3) scattering vectors
    factors = [np.ones(len(hkl))]
    for direction in simulate.distinct_po_directions(laue):
        n = np.asarray(direction, dtype=float) @ reciprocal
        cos2 = (members @ n) ** 2 / (np.einsum("rni,rni->rn", members, members) * (n @ n))
        factors += [simulate.march_dollase_factor(cos2, r) for r in TEXTURE_RATIOS]
    return np.array(factors)
