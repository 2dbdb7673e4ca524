"""Wyckoff search: atom placements in indexed cells and space groups, scored against the pattern.

Score: an intensity R factor on integrated reflection clusters. The background-subtracted pattern
is integrated over windows (a few FWHM, widening with 2θ) around groups of overlapping reflections
and compared with Σ multiplicity·LP·|F|² of the same groups, at the least-squares scale, with a
smooth error of the background fitted alongside, and at the best of a few overall displacement
factors B and March–Dollase preferred orientations. Windows around reflections of the lattice that
the space group forbids count as clusters the structure cannot explain, so the groups of one cell
are scored on the same observed intensity. Penalties (Å²) keep atoms apart and near a neighbour.

Search: one "arm" per cell × space group × atoms per cell. In an arm the elements are placed
heaviest first (the heavy-atom method: heavy atoms dominate the intensities, so their placement
can be judged before light atoms are placed), one Wyckoff orbit at a time, as a beam search: every
kept partial structure is extended by every orbit that leaves the rest of the element placeable
(an orbit without free coordinates holds one element), the new free coordinates are found by
random sampling and gradient descent from the best distinct samples (torch, all trials of a step
in a few tensors), and the best distinct partial structures of each number of atoms still to
place go on (one missing atoms scores worse by their absence alone); once an element is placed,
all coordinates placed so far are polished together before the next, lighter one. The best fillings then get
their coordinates searched again all at once. Arms are run by successive halving: every arm gets
a quick first look, the best complete structures decide which arms are searched again with more
effort. The work is fixed by the constants below, not by the clock, so results do not depend on
machine load.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass

import numpy as np
import spglib
import torch
from pymatgen.core import Element, Lattice, Structure
from pyxtal.symmetry import Group

from model import constraints, scattering, simulate
from model.index import standard_hall_numbers
from model.instrument import Instrument
from model.pattern import Pattern
from model.result import Progress
from model.structure import atomic_radius_A

MAX_SITES = 4  # orbits per element
POLISH_STARTS = 4  # best random samples of an extension that are polished
POLISH_STEPS = 20
MAX_SAMPLES = 512  # random trials of one filling
MIN_SAMPLES = 8  # random trials of a filling with free coordinates, however many fillings there are
RESTART_SPREAD = 0.08  # fractional, spread of the restarts near the best coordinates
START_SPACING = 0.08  # fractional coordinates between the polishing starts of one filling
LEARNING_RATE = 0.02  # fractional coordinates per Adam step at the start (cosine decay)
ADAM_BETAS = (0.9, 0.999)
BACKGROUND_TERMS = 6  # Chebyshev terms of the background error fitted with the scale
BACKGROUND_CLUSTERS = 6  # clusters needed per background term
WINDOW_FWHM = 1.5  # a cluster integrates this many FWHM either side of its reflections
OVERALL_B = (0.5, 2.5)  # Å², overall displacement factors tried for every trial
# March–Dollase preferred orientation tried for every trial: ratios along each low-index direction
TEXTURE_RATIOS = (0.75, 1.35)
CLOSE_FACTOR = 0.55  # atoms closer than this × (r_i + r_j) are penalised (atomic radii, Å)
# an atom whose nearest neighbour is farther than this × (r_i + r_j) is penalised (no bond): the
# shared real structures have every atom within 1.3 × of a neighbour, bar molecular oddities
LONELY_FACTOR = 1.3
CHUNK = 1 << 21  # trial × atom × reflection entries evaluated at once (memory, cancel latency)
SAME_SCORE = 1e-4  # equal scores in one arm: the same structure at another origin


@dataclass(frozen=True)
class Effort:
    """Work per arm in one round: partial structures kept per element (beam), random trials and extensions per
    element polished by gradient descent, joint polish steps of the complete structures (and the
    first step's size, fractional), and the best fillings searched again over all coordinates at
    once (how many, with how many samples)."""

    beam: int
    trials: int  # random trials per element, over all its fillings
    polished: int
    final_steps: int
    final_rate: float = LEARNING_RATE / 4  # small steps: the coordinates were polished element by element
    restarted: int = 0
    restarts: int = 0


# Successive halving over arms: (arms kept, effort). Every arm gets a quick first look; the best
# complete structures decide which arms are searched again with more effort. The first look
# polishes its complete structures: unpolished random samples rank arms by luck (measured: the
# true arm of CO2 Pa-3 and NbAs I4_1md scored 0.5 unpolished, 0.02 and 0.08 polished, and lost),
# in a few full steps: its coordinates are raw samples, and every step of every arm costs ~1 ms.
ROUNDS = ((None, Effort(beam=2, trials=512, polished=0, final_steps=8, final_rate=LEARNING_RATE)),
          (8, Effort(beam=4, trials=2048, polished=6, final_steps=20)),
          (2, Effort(beam=12, trials=8192, polished=16, final_steps=40, restarted=4, restarts=256)))


@dataclass(frozen=True)
class Arm:
    """One search problem: a cell (zero shift in deg 2θ), a space group in its standard setting
    and the number of atoms of each species in the cell."""

    lattice: Lattice
    zero: float
    space_group: int
    species: tuple[str, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True)
class Clusters:
    """Reflections grouped where they overlap, with the observed integrated intensity of each group.

    Clusters without reflections are the windows of forbidden lattice reflections (calculated 0).
    The background-subtracted pattern keeps a smooth error of the background estimate; the score
    fits it as a combination of the ``background`` columns.
    """

    hkl: np.ndarray  # (R, 3)
    d: np.ndarray  # (R,) Å
    weight: np.ndarray  # (R,) multiplicity × LP
    group: np.ndarray  # (R,) cluster index of each reflection
    observed: np.ndarray  # (C,) integrated net intensity
    background: np.ndarray  # (C, B) integrals of smooth functions of 2θ over each cluster's window


@dataclass(frozen=True)
class Candidate:
    """A trial structure and its score (cluster R + close-contact penalty; lower is better)."""

    score: float
    structure: Structure
    space_group: int
    wyckoffs: tuple[str, ...]
    arm: int  # index into the arms searched


@dataclass(frozen=True)
class Orbit:
    """A Wyckoff position: atom j sits at offsets[j] + basis[j] @ p for free coordinates p."""

    label: str  # multiplicity and letter, e.g. "4e"
    offsets: np.ndarray  # (m, 3)
    basis: np.ndarray  # (m, 3, dof)

    @property
    def dof(self) -> int:
        return self.basis.shape[2]


def clusters(pattern: Pattern, net: np.ndarray, lattice: Lattice, space_group: int, zero: float,
             fwhm_poly: Sequence[float]) -> Clusters:
    """Reflections of the cell in the measured range and their observed cluster intensities.

    ``fwhm_poly``: FWHM (deg) as a polynomial in 2θ (deg), highest power first (np.polyval).
    """
    x = pattern.two_theta
    metric = lattice.metric_tensor
    hkl, mult, tth, low, high = _windows(pattern, metric, _ops(space_group), zero, fwhm_poly)
    order = np.argsort(tth)
    hkl, mult, tth, low, high = hkl[order], mult[order], tth[order], low[order], high[order]
    group = np.zeros(len(tth), dtype=int)
    for i in range(1, len(tth)):
        group[i] = group[i - 1] + (low[i] > high[:i].max())
    # cluster of each point of the pattern (−1: none)
    point = np.full(x.size, -1)
    for g in range(group.max() + 1 if len(group) else 0):
        point[(x >= low[group == g].min()) & (x <= high[group == g].max())] = g
    # windows of lattice reflections this group forbids, outside its own windows: intensity there
    # is unexplained (each run of adjacent points is one cluster)
    *_, gap_low, gap_high = _windows(pattern, metric, _ops(1), zero, fwhm_poly)
    gap = np.zeros(x.size, dtype=bool)
    for lo, hi in zip(gap_low, gap_high):
        gap |= (x >= lo) & (x <= hi)
    gap &= point < 0
    runs = np.cumsum(np.diff(np.concatenate([[False], gap])) & gap)  # run number of each gap point
    point[gap] = point.max(initial=-1) + runs[gap]
    inside = point >= 0
    step = np.gradient(x)[inside]
    observed = np.bincount(point[inside], weights=net[inside] * step)
    # the background left in ``net`` is smooth in 2θ: Chebyshev polynomials integrated over each window
    scan = (2 * x[inside] - (x[0] + x[-1])) / (x[-1] - x[0])
    residual = np.stack([np.bincount(point[inside], weights=np.polynomial.chebyshev.chebval(scan, np.eye(k + 1)[k])
                                     * step) for k in range(BACKGROUND_TERMS)], axis=1)
    d = 1 / np.sqrt(np.einsum("ri,ij,rj->r", hkl, np.linalg.inv(metric), hkl))
    theta = np.radians(tth - zero) / 2
    weight = mult * simulate.lorentz_polarisation(theta)
    return Clusters(hkl, d, weight, group, observed, residual)


def _windows(pattern: Pattern, metric: np.ndarray, ops: constraints.SpaceGroupOps, zero: float,
             fwhm_poly: Sequence[float]):
    """hkl families inside the scan, their multiplicity, 2θ (deg) and integration window."""
    tth_min, tth_max = pattern.two_theta[0], pattern.two_theta[-1]
    instrument = Instrument(pattern.wavelength, zero=zero, two_theta_range=(tth_min, tth_max))
    hkl, mult = constraints.hkl_families(metric, ops, instrument.d_min)
    d = 1 / np.sqrt(np.einsum("ri,ij,rj->r", hkl, np.linalg.inv(metric), hkl))
    tth = instrument.two_theta(d)
    fwhm = np.clip(np.polyval(fwhm_poly, tth), 2 * pattern.step, None)
    inside = (tth > tth_min + fwhm) & (tth < tth_max - fwhm)
    tth, fwhm = tth[inside], fwhm[inside]
    doublet = instrument.ka2_two_theta(tth) - tth
    return hkl[inside], mult[inside], tth, tth - WINDOW_FWHM * fwhm, tth + WINDOW_FWHM * fwhm + doublet


@functools.cache
def orbits(space_group: int) -> tuple[Orbit, ...]:
    """The Wyckoff positions of a space group in its standard setting (pyxtal's tables, whose
    operations map a general xyz onto the position; its free coordinates are the x, y or z the
    first operation uses)."""
    result = []
    for wp in Group(space_group):
        first = wp.ops[0].rotation_matrix
        free = [j for j in range(3) if np.any(first[:, j] != 0)]
        offsets = np.array([op.translation_vector for op in wp.ops], dtype=float)
        basis = np.array([op.rotation_matrix[:, free] for op in wp.ops], dtype=float).reshape(len(wp.ops), 3, len(free))
        result.append(Orbit(f"{wp.multiplicity}{wp.letter}", offsets, basis))
    return tuple(result)


def fillings(space_group: int, count: int, taken: frozenset[int] = frozenset()) -> list[tuple[int, ...]]:
    """Ways ``count`` atoms of one element fill Wyckoff positions (orbit indices, non-decreasing), at
    most MAX_SITES orbits, positions without free coordinates used once and not in ``taken``."""
    table = orbits(space_group)
    found: list[tuple[int, ...]] = []

    def extend(prefix: tuple[int, ...], first: int, left: int) -> None:
        if left == 0:
            found.append(prefix)
            return
        if len(prefix) == MAX_SITES:
            return
        for k in range(first, len(table)):
            if table[k].offsets.shape[0] <= left and (table[k].dof or (k not in taken and k not in prefix)):
                extend(prefix + (k,), k, left - table[k].offsets.shape[0])

    extend((), 0, count)
    return found


def feasible(space_group: int, counts: Sequence[int]) -> bool:
    """Whether some choice of Wyckoff positions holds all the atoms (fixed positions used once)."""
    table = orbits(space_group)

    def place(i: int, taken: frozenset[int]) -> bool:
        if i == len(counts):
            return True
        # only the fixed positions an element takes matter to the elements after it
        used = {frozenset(k for k in option if not table[k].dof) for option in fillings(space_group, counts[i], taken)}
        return any(place(i + 1, taken | fixed) for fixed in used)

    return place(0, frozenset())


@functools.cache
def _fillable(space_group: int, count: int, taken: frozenset[int], first: int, sites: int) -> bool:
    """Whether ``count`` atoms fit in at most ``sites`` orbits of index ≥ ``first`` (fixed positions
    used once and not in ``taken``)."""
    if count == 0:
        return True
    table = orbits(space_group)
    return sites > 0 and any(
        _fillable(space_group, count - table[k].offsets.shape[0], taken | ({k} if not table[k].dof else set()), k,
                  sites - 1)
        for k in range(first, len(table))
        if table[k].offsets.shape[0] <= count and (table[k].dof or k not in taken))


@dataclass(frozen=True)
class _Partial:
    """Some elements placed: orbits (species index, orbit index) with their free coordinates."""

    arm: int
    sites: tuple[tuple[int, int], ...]
    params: np.ndarray  # free coordinates of all sites, in site order
    score: float

    @property
    def taken(self) -> frozenset[int]:
        return frozenset(k for _, k in self.sites)


@dataclass(frozen=True)
class _Layout:
    """Atoms of a list of sites: atom j at offsets[j] + basis[j] @ p; species index of each atom."""

    offsets: np.ndarray  # (A, 3)
    basis: np.ndarray  # (A, 3, P)
    kinds: np.ndarray  # (A,)

    @property
    def dof(self) -> int:
        return self.basis.shape[2]

    def positions(self, params: np.ndarray) -> np.ndarray:
        return self.offsets + np.einsum("aip,p->ai", self.basis, params)


@dataclass(frozen=True)
class _Extension:
    """A partial structure extended by new sites; starts are its best random samples, best first."""

    parent: _Partial
    sites: tuple[tuple[int, int], ...]
    layout: _Layout
    starts: np.ndarray  # (k, dof)
    score: float

    def partial(self, params: np.ndarray, score: float) -> _Partial:
        return _Partial(self.parent.arm, self.parent.sites + self.sites,
                        np.concatenate([self.parent.params, params]), float(score))


@dataclass
class _Batch:
    """Free atoms of n trials, padded to A atoms and P parameters (mask 0 on padding)."""

    offsets: torch.Tensor  # (n, A, 3)
    basis: torch.Tensor  # (n, A, 3, P)
    kinds: torch.Tensor  # (n, A) species index
    mask: torch.Tensor  # (n, A)
    mixed: torch.Tensor  # (n,) more than one element among the atoms

    def take(self, rows) -> _Batch:
        return _Batch(self.offsets[rows], self.basis[rows], self.kinds[rows], self.mask[rows], self.mixed[rows])


@dataclass
class _Fixed:
    """Atoms already placed in n trials: their structure factor, positions and own penalty."""

    re: torch.Tensor  # (n, R)
    im: torch.Tensor  # (n, R)
    pos: torch.Tensor  # (n, Q, 3)
    kinds: torch.Tensor  # (n, Q)
    mask: torch.Tensor  # (n, Q)
    penalty: torch.Tensor  # (n,)

    @classmethod
    def empty(cls, n: int, reflections: int) -> _Fixed:
        none = torch.zeros(n, 0)
        return cls(torch.zeros(n, reflections), torch.zeros(n, reflections), torch.zeros(n, 0, 3),
                   none.long(), none, torch.zeros(n))

    def take(self, rows) -> _Fixed:
        return _Fixed(self.re[rows], self.im[rows], self.pos[rows], self.kinds[rows], self.mask[rows],
                      self.penalty[rows])


class _Problem:
    """One arm's reflections, observed clusters and cost function, as torch tensors."""

    def __init__(self, arm: Arm, refl: Clusters, textures: np.ndarray):
        """``refl`` and ``textures`` (_textures of its reflections) of the arm's cell and group."""
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

    def layout(self, sites: Sequence[tuple[int, int]]) -> _Layout:
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
        return _Layout(np.concatenate(offsets), np.concatenate(blocks), np.concatenate(kinds))

    def score(self, q: torch.Tensor, free: _Batch, fixed: _Fixed, texture: bool = True) -> torch.Tensor:
        """(n,) cluster R (at the best overall B and, with ``texture``, preferred orientation) +
        close-contact and loneliness penalties of n trials."""
        weights = self.weights if texture else self.weights[::self.textures]
        pos = free.offsets + torch.einsum("naip,np->nai", free.basis, q)  # (n, A, 3)
        phase = (2 * torch.pi) * (pos @ self.hkl.T)  # (n, A, R)
        f = self.f[free.kinds] * free.mask[..., None]
        re = (f * torch.cos(phase)).sum(1) + fixed.re
        im = (f * torch.sin(phase)).sum(1) + fixed.im
        per_reflection = (re * re + im * im)[:, None, :] * weights
        calc = per_reflection.new_zeros(len(q), len(weights), self.clusters).index_add_(2, self.group, per_reflection)
        calc = calc - (calc @ self.background) @ self.background.T
        # R² = 1 − cos²(calc, observed) at the least-squares scale
        cosine = (calc @ self.observed) / calc.norm(dim=-1).clamp_min(1e-30)
        r = torch.sqrt((1 - cosine.square()).clamp_min(1e-12)).min(dim=1).values
        return r + fixed.penalty + self.penalty(pos, free, fixed)

    def penalty(self, pos: torch.Tensor, free: _Batch, fixed: _Fixed) -> torch.Tensor:
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

    def rows(self, batch: _Batch) -> int:
        """Trials per evaluation, so that one holds about CHUNK entries (phases and weighted |F|²)."""
        return max(1, CHUNK // (len(self.hkl) * (batch.offsets.shape[1] + len(self.weights))))

    def _distances(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(n, A, B) shortest distances (Å, periodic images included) between atoms of a and b."""
        delta = a[:, :, None, :] - b[:, None, :, :]
        delta = delta - torch.round(delta)
        cart = (delta[..., None, :] + self.images) @ self.matrix
        return torch.sqrt(cart.square().sum(-1) + 1e-6).min(dim=-1).values

    def _short(self, dist: torch.Tensor, kinds_a: torch.Tensor, kinds_b: torch.Tensor) -> torch.Tensor:
        """max(0, pair_min − distance)² (Å²) of each pair."""
        return (self.pair_min[kinds_a[:, :, None], kinds_b[:, None, :]] - dist).clamp_min(0).square()

    def batch(self, layouts: Sequence[_Layout]) -> _Batch:
        width = max(max(lay.offsets.shape[0] for lay in layouts), 1)
        params = max(max(lay.dof for lay in layouts), 1)
        n = len(layouts)
        offsets, basis = np.zeros((n, width, 3)), np.zeros((n, width, 3, params))
        kinds, mask = np.zeros((n, width), dtype=int), np.zeros((n, width))
        for i, lay in enumerate(layouts):
            a = lay.offsets.shape[0]
            offsets[i, :a], basis[i, :a, :, :lay.dof], kinds[i, :a], mask[i, :a] = lay.offsets, lay.basis, lay.kinds, 1
        mixed = [len(set(lay.kinds)) > 1 for lay in layouts]
        return _Batch(torch.tensor(offsets, dtype=torch.float32), torch.tensor(basis, dtype=torch.float32),
                      torch.tensor(kinds), torch.tensor(mask, dtype=torch.float32), torch.tensor(mixed))

    def fixed(self, parents: Sequence[_Partial]) -> _Fixed:
        """The placed atoms of each parent (computed once per distinct parent)."""
        distinct = {id(p): p for p in parents}
        layouts = {key: self.layout(p.sites) for key, p in distinct.items()}
        width = max(max(lay.offsets.shape[0] for lay in layouts.values()), 1)
        rows = {key: n for n, key in enumerate(distinct)}
        batch = self.batch(list(layouts.values()))
        pos = np.zeros((len(distinct), width, 3))
        for key, p in distinct.items():
            lay = layouts[key]
            pos[rows[key], :lay.offsets.shape[0]] = lay.positions(p.params)
        pos = torch.tensor(pos, dtype=torch.float32)
        f = self.f[batch.kinds] * batch.mask[..., None]
        phase = (2 * torch.pi) * (pos @ self.hkl.T)
        re, im = (f * torch.cos(phase)).sum(1), (f * torch.sin(phase)).sum(1)
        own = self.penalty(pos, batch, _Fixed.empty(len(distinct), len(self.hkl)))
        index = torch.tensor([rows[id(p)] for p in parents])
        return _Fixed(re, im, pos, batch.kinds, batch.mask, own).take(index)

    def structure(self, sites: Sequence[tuple[int, int]], params: np.ndarray) -> Structure:
        lay = self.layout(sites)
        return Structure(self.arm.lattice, [self.arm.species[k] for k in lay.kinds], lay.positions(params) % 1.0)


def search(pattern: Pattern, net: np.ndarray, arms: Sequence[Arm], fwhm_poly: Sequence[float],
           rng: np.random.Generator) -> Generator[Progress, None, list[Candidate]]:
    """Complete placements over all arms, best first. A generator: it yields Progress (fraction 0–1)
    after every batch of trials (a fraction of a second), so closing it cancels promptly.

    ``fwhm_poly``: FWHM (deg) as a polynomial in 2θ (deg), highest power first (np.polyval).
    """
    problems: dict[int, _Problem] = {}
    # arms differing only in the atoms per cell share their reflections and observed clusters
    reflections: dict[tuple, tuple[Clusters, np.ndarray]] = {}
    for i, arm in enumerate(arms):
        yield Progress("search", 0.0, f"reflections of {_symbol(arm.space_group)} ({i + 1}/{len(arms)})")
        key = (_cell(arm), arm.zero, arm.space_group)
        if key not in reflections:
            refl = clusters(pattern, net, arm.lattice, arm.space_group, arm.zero, fwhm_poly)
            reflections[key] = refl, _textures(refl.hkl, arm.lattice, _ops(arm.space_group))
        problem = _Problem(arm, *reflections[key])
        if problem.valid:
            problems[i] = problem
    # heaviest element first; every arm holds the same elements (in different numbers)
    elements = sorted({s for p in problems.values() for s in p.arm.species}, key=lambda s: -Element(s).Z)
    found: dict[int, list[_Partial]] = {}
    alive = list(problems)
    for r, (arms_kept, effort) in enumerate(ROUNDS):
        # successive halving: the arms whose complete structures score best so far get more effort,
        # the best arm of every cell among them (a supercell's extra freedom can win a first look);
        # arms where no complete structure was found go last
        alive = sorted(alive, key=lambda i: min((s.score for s in found.get(i, [])), default=np.inf))
        firsts = [i for n, i in enumerate(alive) if all(_cell(arms[i]) != _cell(arms[j]) for j in alive[:n])]
        alive = (firsts + [i for i in alive if i not in firsts])[:arms_kept]
        for k, i in enumerate(alive):
            done = (r + k / len(alive)) / len(ROUNDS)
            note = Progress("search", done, f"{_symbol(problems[i].arm.space_group)}, round {r + 1} of {len(ROUNDS)}")
            found[i] = yield from _beam_search(problems[i], i, elements, effort, found.get(i, []), rng, note)
    complete = sorted((s for states in found.values() for s in states), key=lambda s: s.score)
    return [Candidate(s.score, problems[s.arm].structure(s.sites, s.params), problems[s.arm].arm.space_group,
                      tuple(problems[s.arm].orbits[k].label for _, k in s.sites), s.arm) for s in complete]


def _beam_search(problem: _Problem, arm: int, elements: Sequence[str], effort: Effort, earlier: list[_Partial],
                 rng: np.random.Generator, note: Progress) -> Generator[Progress, None, list[_Partial]]:
    """Complete placements in one arm: the elements placed one by one, heaviest first, each one
    Wyckoff orbit at a time; ``effort.beam`` partial structures kept after each step. The
    complete structures of ``earlier`` rounds compete with the new ones."""
    beam = [_Partial(arm, (), np.zeros(0), 0.0)]
    for element in elements:
        while any(_left(problem, state, element) for state in beam):
            extensions = yield from _sample(problem, beam, element, effort, rng, note)
            children = yield from _polish_new(problem, extensions, effort, note)
            # a structure still missing atoms of the element scores worse than a complete one by
            # their absence alone: the beam keeps the best of each number of atoms still to place,
            # so fillings that take more orbits are judged once complete
            by_left: dict[int, list[_Partial]] = {}
            for child in children:
                by_left.setdefault(_left(problem, child, element), []).append(child)
            beam = [s for group in by_left.values() for s in _select(group, effort.beam)]
            if not beam:
                return earlier
        # the heavy-atom method refines what is placed before it looks for the lighter atoms:
        # lighter atoms placed against heavy ones a tenth of an Å off settle in the wrong places
        # (measured: KLaTiO4's K 0.7 Å off its site, and then its O, with La and Ti 0.16 Å off).
        # Not in the first look, whose coordinates are raw samples: it only ranks the arms
        if effort.polished and beam and beam[0].params.size:
            beam = yield from _polish_all(problem, beam, effort.final_steps, effort.final_rate, note)
    if effort.final_steps:
        beam = yield from _polish_all(problem, beam, effort.final_steps, effort.final_rate, note)
    beam = _select(beam + earlier, len(beam) + len(earlier))
    if effort.restarts:
        beam = _select(beam + (yield from _restart(problem, beam, effort, rng, note)), len(beam))
    return beam


def _restart(problem: _Problem, states: list[_Partial], effort: Effort, rng: np.random.Generator,
             note: Progress) -> Generator[Progress, None, list[_Partial]]:
    """The best fillings again with every free coordinate searched at once (gradient descent from
    distinct good ones of random samples, half of them near the best coordinates found, half
    anywhere): placing one orbit at a time can settle atoms of similar scattering power in the
    wrong places for the rest."""
    best: dict[tuple, _Partial] = {}
    for state in sorted(states, key=lambda s: s.score):
        if state.params.size:
            best.setdefault(state.sites, state)
    fillings_seen = list(best)[:effort.restarted]
    if not fillings_seen:
        return []
    layouts = [problem.layout(sites) for sites in fillings_seen]
    batch = problem.batch(layouts)
    empty = problem.fixed([_Partial(states[0].arm, (), np.zeros(0), 0.0)])
    job_of_trial = np.repeat(np.arange(len(layouts)), effort.restarts)
    q = rng.random((job_of_trial.size, batch.basis.shape[-1]))
    near = rng.random(job_of_trial.size) < 0.5
    for j, sites in enumerate(fillings_seen):
        rows = np.flatnonzero((job_of_trial == j) & near)
        params = best[sites].params
        q[rows, :params.size] = params + rng.normal(0.0, RESTART_SPREAD, (rows.size, params.size))
    scores = yield from _trial_scores(problem, q, batch, empty, job_of_trial, torch.zeros_like, note)
    starts = []
    for j, lay in enumerate(layouts):
        mine = np.flatnonzero(job_of_trial == j)
        starts += [(j, row) for row in _distinct(q[mine[np.argsort(scores[mine], kind="stable")], :lay.dof])]
    q0 = np.zeros((len(starts), batch.basis.shape[-1]))
    for n, (_, row) in enumerate(starts):
        q0[n, :row.size] = row
    index = torch.tensor([j for j, _ in starts])
    q, scores = yield from _descend(problem, q0, batch.take(index), empty.take(torch.zeros_like(index)),
                                    effort.final_steps, LEARNING_RATE, note)
    return [_Partial(states[0].arm, fillings_seen[j], q[n, :row.size], float(scores[n]))
            for n, (j, row) in enumerate(starts)]


def _trial_scores(problem: _Problem, q: np.ndarray, batch: _Batch, fixed: _Fixed, job_of_trial: np.ndarray,
                  fixed_row: Callable[[torch.Tensor], torch.Tensor], note: Progress,
                  texture: bool = True) -> Generator[Progress, None, np.ndarray]:
    """Scores of the trial coordinates q (row r tries job job_of_trial[r]; its fixed atoms are row
    fixed_row(job) of ``fixed``), in chunks as large as memory allows, yielding between chunks."""
    rows = problem.rows(batch)
    scores = []
    for start in range(0, job_of_trial.size, rows):
        index = torch.from_numpy(job_of_trial[start:start + rows])
        with torch.no_grad():
            scores.append(problem.score(torch.tensor(q[start:start + rows], dtype=torch.float32),
                                        batch.take(index), fixed.take(fixed_row(index)), texture=texture).numpy())
        yield note
    return np.concatenate(scores)


def _cell(arm: Arm) -> tuple[float, ...]:
    return tuple(np.round(arm.lattice.parameters, 4))


def _samples(dof: int) -> int:
    """Random trials for ``dof`` new free coordinates: about as many per coordinate as there are
    basins along it (~4), so fillings with more free coordinates are not judged on a sparser look."""
    return 1 if dof == 0 else min(16 * 4 ** (dof - 1), MAX_SAMPLES)


def _sample(problem: _Problem, states: list[_Partial], element: str, effort: Effort, rng: np.random.Generator,
            note: Progress) -> Generator[Progress, None, list[_Extension]]:
    """Each partial structure with one more orbit of ``element`` (every orbit that leaves the rest
    of the element placeable), scored at random samples of its free coordinates (without the
    preferred-orientation grid: it hardly changes which samples are best and is most of the cost);
    partial structures that hold all of the element pass unchanged."""
    arm = problem.arm
    done = [_Extension(s, (), problem.layout(()), np.zeros((1, 0)), s.score) for s in states
            if not _left(problem, s, element)]
    species = arm.species.index(element) if element in arm.species else -1
    jobs = []
    for state in states:
        left = _left(problem, state, element)
        if not left:
            continue
        mine = [k for sp, k in state.sites if sp == species]
        for k in range(max(mine, default=0), len(problem.orbits)):
            size, fixed = problem.orbits[k].offsets.shape[0], not problem.orbits[k].dof
            if size <= left and not (fixed and k in state.taken) and _fillable(
                    arm.space_group, left - size, state.taken | {k}, k, MAX_SITES - len(mine) - 1):
                jobs.append((state, ((species, k),)))
    if not jobs:
        return done
    layouts = [problem.layout(sites) for _, sites in jobs]
    wanted = np.array([_samples(lay.dof) for lay in layouts])
    # at most effort.trials in all: fewer per filling when there are many, never below MIN_SAMPLES
    share = np.where(wanted > 1, np.maximum(MIN_SAMPLES, wanted * min(1.0, effort.trials / wanted.sum())), 1)
    job_of_trial = np.repeat(np.arange(len(jobs)), share.astype(int))
    batch = problem.batch(layouts)
    fixed = problem.fixed([state for state, _ in jobs])
    q = rng.random((job_of_trial.size, batch.basis.shape[-1]))
    scores = yield from _trial_scores(problem, q, batch, fixed, job_of_trial, lambda index: index, note,
                                      texture=False)
    extensions = []
    for j, ((state, sites), lay) in enumerate(zip(jobs, layouts)):
        mine = np.flatnonzero(job_of_trial == j)
        starts = _distinct(q[mine[np.argsort(scores[mine], kind="stable")], :lay.dof])
        extensions.append(_Extension(state, sites, lay, starts, float(scores[mine].min())))
    return done + extensions


def _left(problem: _Problem, state: _Partial, element: str) -> int:
    """Atoms of ``element`` not yet placed in a partial structure."""
    if element not in problem.arm.species:
        return 0
    species = problem.arm.species.index(element)
    placed = sum(problem.orbits[k].offsets.shape[0] for sp, k in state.sites if sp == species)
    return problem.arm.counts[species] - placed


def _polish_new(problem: _Problem, extensions: list[_Extension], effort: Effort,
                note: Progress) -> Generator[Progress, None, list[_Partial]]:
    """Each extension as a partial structure; the ``effort.polished`` best with free coordinates get
    gradient descent on the new coordinates from each of their starts (distinct local minima of
    one filling are different partial structures)."""
    ranked = sorted((e for e in extensions if e.layout.dof > 0), key=lambda e: e.score)[:effort.polished]
    chosen = {id(e) for e in ranked}
    partials = [e.partial(e.starts[0], e.score) for e in extensions if id(e) not in chosen]
    if ranked:
        starts = [(e, row) for e in ranked for row in e.starts]
        batch = problem.batch([e.layout for e, _ in starts])
        fixed = problem.fixed([e.parent for e, _ in starts])
        q0 = np.zeros((len(starts), batch.basis.shape[-1]))
        for n, (_, row) in enumerate(starts):
            q0[n, :row.size] = row
        q, scores = yield from _descend(problem, q0, batch, fixed, POLISH_STEPS, LEARNING_RATE, note)
        partials += [e.partial(q[n, :row.size], scores[n]) for n, (e, row) in enumerate(starts)]
    return partials


def _distinct(samples: np.ndarray) -> np.ndarray:
    """Up to POLISH_STARTS of the (best-first) samples, each at least START_SPACING (fractional,
    periodic) from those before it, so the starts fall in different basins."""
    kept = [samples[0]]
    for row in samples[1:]:
        if len(kept) == POLISH_STARTS:
            break
        delta = np.abs(row - np.array(kept))
        if np.all(np.minimum(delta, 1 - delta).max(axis=1) >= START_SPACING):
            kept.append(row)
    return np.array(kept)


def _polish_all(problem: _Problem, states: list[_Partial], steps: int, rate: float,
                note: Progress) -> Generator[Progress, None, list[_Partial]]:
    """Joint gradient descent on every free coordinate of complete structures."""
    batch = problem.batch([problem.layout(s.sites) for s in states])
    fixed = problem.fixed([_Partial(states[0].arm, (), np.zeros(0), 0.0)] * len(states))
    q0 = np.zeros((len(states), batch.basis.shape[-1]))
    for n, s in enumerate(states):
        q0[n, :s.params.size] = s.params
    q, scores = yield from _descend(problem, q0, batch, fixed, steps, rate, note)
    return [_Partial(s.arm, s.sites, q[n, :s.params.size], float(scores[n])) if scores[n] < s.score else s
            for n, s in enumerate(states)]


def _descend(problem: _Problem, q0: np.ndarray, batch: _Batch, fixed: _Fixed, steps: int, rate: float,
             note: Progress) -> Generator[Progress, None, tuple[np.ndarray, np.ndarray]]:
    """Adam with a cosine-decaying step on the sum of the trials' scores (independent trials: each
    follows its own gradient); returns the best parameters and score each trial reached.
    Written out because torch.optim's first use imports torch._dynamo, seconds of start-up."""
    rows = max(1, problem.rows(batch) // 3)  # the backward pass holds about twice the forward's tensors
    best_q, best_score = q0.copy(), np.full(len(q0), np.inf)
    for start in range(0, len(q0), rows):
        part = slice(start, start + rows)
        free, placed = batch.take(part), fixed.take(part)
        q = torch.tensor(q0[part], dtype=torch.float32, requires_grad=True)
        mean, square = torch.zeros_like(q), torch.zeros_like(q)
        for step in range(steps + 1):
            score = problem.score(q, free, placed)
            values = score.detach().numpy()
            better = values < best_score[part]
            best_score[part] = np.where(better, values, best_score[part])
            best_q[part][better] = q.detach().numpy()[better]
            if step == steps:
                break
            (gradient,) = torch.autograd.grad(score.sum(), q)
            mean.mul_(ADAM_BETAS[0]).add_((1 - ADAM_BETAS[0]) * gradient)
            square.mul_(ADAM_BETAS[1]).add_((1 - ADAM_BETAS[1]) * gradient.square())
            unbiased = mean / (1 - ADAM_BETAS[0] ** (step + 1))
            scale = (square / (1 - ADAM_BETAS[1] ** (step + 1))).sqrt() + 1e-8
            with torch.no_grad():
                q -= rate * 0.5 * (1 + np.cos(np.pi * step / steps)) * unbiased / scale
            yield note
    return best_q, best_score


def _select(children: list[_Partial], width: int) -> list[_Partial]:
    """The ``width`` best, one of each set of copies: equal scores (the same structure at another
    origin) or the same orbits with nearly the same coordinates (one basin reached twice)."""
    kept: list[_Partial] = []
    for child in sorted(children, key=lambda c: c.score):
        if not any(abs(k.score - child.score) < SAME_SCORE or _same_place(k, child) for k in kept):
            kept.append(child)
        if len(kept) == width:
            break
    return kept


def _same_place(a: _Partial, b: _Partial) -> bool:
    if a.sites != b.sites:
        return False
    delta = np.abs(a.params - b.params) % 1.0
    return bool(np.all(np.minimum(delta, 1 - delta) < START_SPACING / 2))


def _textures(hkl: np.ndarray, lattice: Lattice, ops: constraints.SpaceGroupOps) -> np.ndarray:
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


def _symbol(number: int) -> str:
    return _ops(number).symbol


_OPS_CACHE: dict[int, constraints.SpaceGroupOps] = {}


def _ops(number: int) -> constraints.SpaceGroupOps:
    """Operations of the standard setting (spglib database), which pyxtal's Wyckoff tables share."""
    if number not in _OPS_CACHE:
        hall = standard_hall_numbers()[number]
        symmetry = spglib.get_symmetry_from_database(hall)
        _OPS_CACHE[number] = constraints.SpaceGroupOps(symmetry["rotations"], symmetry["translations"], number,
                                                       spglib.get_spacegroup_type(hall).international_short)
    return _OPS_CACHE[number]
