"""Wyckoff search: atom placements in a given space group and cell, scored against the pattern.

Every combination of Wyckoff positions that holds the composition (pyxtal enumerates them) is
tried; free coordinates are found by random restarts and a local simplex search. The score is an
intensity R factor on integrated reflection clusters: the background-subtracted pattern integrated
over windows around groups of overlapping reflections, against Σ multiplicity·|F|²·LP of the
same groups (|F|² from model.scattering, LP from model.simulate). Cheap enough for thousands of
trials; the best few go on to full Rietveld refinement. An optional prior (e.g. the network's
density) can add a term to the score.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from pymatgen.core import Element, Lattice, Structure
import spglib
from pyxtal.symmetry import Group
from scipy.optimize import minimize

from model import constraints, scattering, simulate
from model.index import standard_hall_numbers
from model.pattern import Pattern

MAX_COMBINATIONS = 400
CLOSE_FACTOR = 0.55  # atoms closer than this × (r_i + r_j) are penalised (atomic radii, Å)


@dataclass(frozen=True)
class Clusters:
    """Reflections grouped where they overlap, with the observed integrated intensity of each group."""

    hkl: np.ndarray  # (R, 3)
    d: np.ndarray  # (R,) Å
    weight: np.ndarray  # (R,) multiplicity × LP
    group: np.ndarray  # (R,) cluster index of each reflection
    observed: np.ndarray  # (C,) integrated net intensity


@dataclass(frozen=True)
class Candidate:
    """A trial structure and its cluster R factor (lower is better)."""

    score: float
    structure: Structure
    space_group: int
    wyckoffs: tuple[str, ...]


def clusters(pattern: Pattern, net: np.ndarray, lattice: Lattice, space_group: int, zero: float,
             fwhm: float) -> Clusters:
    """Reflections of the cell in the measured range and their observed cluster intensities."""
    ops = _ops(space_group)
    wl = pattern.wavelength
    tth_max = pattern.two_theta[-1]
    d_min = wl.ka1 / (2 * np.sin(np.radians(tth_max - zero) / 2))
    hkl, mult = constraints.hkl_families(lattice.metric_tensor, ops, d_min)
    d = 1 / np.sqrt(np.einsum("ri,ij,rj->r", hkl, np.linalg.inv(lattice.metric_tensor), hkl))
    theta = np.arcsin(np.clip(wl.ka1 / (2 * d), 0, 1))
    tth = np.degrees(2 * theta) + zero
    inside = (tth > pattern.two_theta[0] + fwhm) & (tth < tth_max - fwhm)
    hkl, mult, d, theta, tth = hkl[inside], mult[inside], d[inside], theta[inside], tth[inside]
    order = np.argsort(tth)
    hkl, mult, d, theta, tth = hkl[order], mult[order], d[order], theta[order], tth[order]
    doublet = 0.0
    if wl.has_doublet:
        doublet = np.degrees(2 * np.arcsin(np.clip(np.sin(theta) * wl.ka2 / wl.ka1, 0, 1))) - np.degrees(2 * theta)
    low = tth - 1.5 * fwhm
    high = tth + 1.5 * fwhm + doublet
    group = np.zeros(len(tth), dtype=int)
    for i in range(1, len(tth)):
        group[i] = group[i - 1] + (low[i] > high[:i].max())
    step = np.gradient(pattern.two_theta)
    observed = np.zeros(group.max() + 1 if len(group) else 0)
    for g in range(observed.size):
        members = group == g
        window = (pattern.two_theta >= low[members].min()) & (pattern.two_theta <= high[members].max())
        observed[g] = max(float(np.sum(net[window] * step[window])), 0.0)
    weight = mult * simulate.lorentz_polarisation(theta)
    return Clusters(hkl, d, weight, group, observed)


def cluster_r(clusters: Clusters, f2: np.ndarray) -> float:
    """R = sqrt(Σ(Io − s·Ic)² / ΣIo²) with the least-squares scale s."""
    calc = np.bincount(clusters.group, weights=clusters.weight * f2, minlength=clusters.observed.size)
    scale = float(calc @ clusters.observed) / max(float(calc @ calc), 1e-30)
    return float(np.sqrt(np.sum((clusters.observed - scale * calc) ** 2) / np.sum(clusters.observed**2)))


def composition_counts(formula_counts: dict[str, int], z: int) -> tuple[list[str], list[int]]:
    species = sorted(formula_counts)
    return species, [formula_counts[s] * z for s in species]


def search(pattern: Pattern, net: np.ndarray, lattice: Lattice, space_group: int, species: list[str],
           counts: list[int], zero: float, fwhm: float, rng: np.random.Generator, restarts: int = 6,
           prior: Callable[[Structure], float] | None = None, deadline: float = float("inf")) -> Iterator[Candidate]:
    """Best placement of each Wyckoff combination (yielded one by one, so callers can stop).

    ``deadline`` (time.perf_counter() seconds) cuts the random restarts of a combination short.
    """
    group = Group(space_group)
    combos, _, _ = group.list_wyckoff_combinations(counts)
    refl = clusters(pattern, net, lattice, space_group, zero, fwhm)
    if refl.observed.size == 0 or not np.any(refl.observed > 0):
        return
    coeffs = torch.tensor(scattering.form_factor_coeffs(species))
    hkl = torch.tensor(refl.hkl)
    d = torch.tensor(refl.d)
    radii = np.array([_radius(s) for s in species])
    matrix = lattice.matrix
    # simplest placements first: fewest sites, then fewest free coordinates
    combos = sorted(combos, key=lambda c: (sum(map(len, c)), sum(group[l].get_dof() for ls in c for l in ls)))
    for combo in combos[:MAX_COMBINATIONS]:
        wps = [(k, group[label]) for k, labels in enumerate(combo) for label in labels]
        element_index = np.concatenate([np.full(wp.multiplicity, k) for k, wp in wps])
        atom_coeffs = coeffs[element_index]
        ones = torch.ones(len(element_index), dtype=torch.float64)
        biso = torch.full((len(element_index),), 0.5, dtype=torch.float64)
        pair_min = CLOSE_FACTOR * (radii[element_index][:, None] + radii[element_index][None, :])
        dof = sum(wp.get_dof() for _, wp in wps)

        def positions(x):
            return np.concatenate([np.asarray(wp.apply_ops(x[3 * i:3 * i + 3]), float)
                                   for i, (_, wp) in enumerate(wps)]) % 1.0

        def cost(x):
            frac = positions(x)
            with torch.no_grad():
                f2 = scattering.structure_factor_sq_torch(hkl, d, torch.from_numpy(frac), atom_coeffs, ones, biso)
            value = cluster_r(refl, f2.numpy()) + _overlap(frac, matrix, pair_min)
            return value

        starts = [rng.random(3 * len(wps)) for _ in range(restarts if dof else 1)]
        best_x, best = None, np.inf
        for k, x0 in enumerate(starts):
            if k and time.perf_counter() > deadline:
                break
            if dof:
                result = minimize(cost, x0, method="Nelder-Mead",
                                  options={"maxfev": 40 * dof, "xatol": 1e-3, "fatol": 1e-4})
                x, value = result.x, float(result.fun)
            else:
                x, value = x0, cost(x0)
            if value < best:
                best_x, best = x, value
        structure = Structure(lattice, [species[k] for k in element_index], positions(best_x))
        if prior is not None:
            best += prior(structure)
        yield Candidate(best, structure, space_group, tuple(label for labels in combo for label in labels))


def _overlap(frac: np.ndarray, matrix: np.ndarray, pair_min: np.ndarray) -> float:
    """Penalty for atoms closer than pair_min (Å), periodic images included."""
    delta = frac[:, None, :] - frac[None, :, :]
    delta -= np.round(delta)
    dist = np.linalg.norm(delta @ matrix, axis=-1)
    np.fill_diagonal(dist, np.inf)
    short = np.clip(pair_min - dist, 0, None)
    return float(np.sum(short**2))


def _radius(symbol: str) -> float:
    radius = Element(symbol).atomic_radius
    return float(radius) if radius is not None else 1.5


_OPS_CACHE: dict[int, constraints.SpaceGroupOps] = {}


def _ops(number: int) -> constraints.SpaceGroupOps:
    """Operations of the standard setting (spglib database), which pyxtal's Wyckoff tables share."""
    if number not in _OPS_CACHE:
        hall = standard_hall_numbers()[number]
        symmetry = spglib.get_symmetry_from_database(hall)
        _OPS_CACHE[number] = constraints.SpaceGroupOps(symmetry["rotations"], symmetry["translations"], number,
                                                       spglib.get_spacegroup_type(hall).international_short)
    return _OPS_CACHE[number]
