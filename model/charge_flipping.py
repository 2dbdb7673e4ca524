"""Ab-initio phases from powder amplitudes by charge flipping (Oszlányi & Sütő, Acta Cryst. A60, 134, 2004).

The iteration works in P1 on a grid of the cell: ρ = FT⁻¹(E); every voxel below δ = k·σ(ρ) has
its sign flipped; G = FT(ρ'); E takes the observed normalised amplitudes |E| (|F| over its
resolution shell's rms, which sharpens the atoms) with the phases of G, unobserved and absent
reflections are 0 and E(000) is left free. On 40 shared cubic and tetragonal cells (ideal powder
amplitudes, d ≥ 0.9 Å, 3 starts × 400 cycles) |E| with k = 1.1 gave mean cc 0.76 / recall 0.83;
|F| with k = 1.3 gave 0.69 / 0.72 (k = 0.8, 1.1, 1.3 tried with each). Several random starts are run (R factor
Σ| |E| − c|G| | / Σ|E| reported for each). The converged map sits at an
arbitrary origin, so the space group's symmetry is then imposed on each start's result the way superflip does it: the
origin shift s that makes the phases most consistent with every operation (one FFT over all
shifts) is found, and each F(h) is replaced by the average of exp(2πi h·t) F(hR) over the
operations (R, t). How well the equivalents agree, |Σ| / Σ|·|, is each reflection's figure of merit;
of the starts, the one whose map obeys the group best (|F|²-weighted mean figure of merit) is kept:
on small high-symmetry cells the lowest R factor often picked a wrong, differently centred map.

The map is built from the observed amplitudes with these phases and F(000) = ΣZ when the
composition is known (e/Å³ then, if the amplitudes are on the absolute scale, see
``wilson_scale``); without it F(000) puts the map's minimum at 0.

Powder amplitudes come from ``reflections_from_pattern``: the search's integrated intensities of
clusters of overlapping reflections in the indexed cell (model.extraction.clusters), each cluster's
intensity split equally over its reflections (equipartition: the same |F|² for every hkl of the
cluster, so a family receives in proportion to its multiplicity × LP), the usual start of
ab-initio phasing. Le Bail or Pawley extraction would resolve partial overlaps better.

Conventions: F(h) = Σ_j f_j exp(2πi h·x_j) (e), ρ(x) = (1/V) Σ_h F(h) exp(−2πi h·x) (e/Å³),
grids indexed [i, j, k] at fractional (i/n, j/n, k/n) as CMED grids are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import spglib
import torch
from pymatgen.core import Lattice, Structure

from model import constraints, scattering
from model.errors import InputError
from model.extraction import clusters
from model.instrument import bragg_theta
from model.pattern import Pattern
from model.simulate import lorentz_polarisation
from model.spacegroups import standard_hall_numbers

STARTS = 3
CYCLES = 400
DELTA_SIGMA = 1.1  # flipping threshold δ in units of the map's σ
SAMPLING = 3.0  # grid points per d_min along the longest cell edge
SHIFT_OVERSAMPLING = 2  # origin-search grid: this many points per map grid point
WILSON_SHELLS = 8
LATTICE_POINTS = {"P": 1, "A": 2, "B": 2, "C": 2, "I": 2, "R": 3, "F": 4}  # conventional cell


@dataclass(frozen=True)
class Amplitudes:
    """Observed amplitudes, one representative hkl per Laue family of the space group.

    hkl (R, 3); f_obs (R,) |F| in e (absolute scale after ``wilson_scale``, else relative) of every
    member of the family; d (R,) Å.
    """

    hkl: np.ndarray
    f_obs: np.ndarray
    d: np.ndarray


@dataclass(frozen=True)
class FlipResult:
    """Charge flipping's density and phases.

    values (n, n, n) ρ in e/Å³ (relative when the composition was not given); phases (R,) radians and
    fom (R,) 0–1 for the representatives of the Amplitudes; symmetry_fom: their |F|²-weighted mean,
    by which the kept start was chosen; r_factor of the kept start's last cycle and the R factor of
    every start; origin: the shift (fractional) applied to reach the symmetric origin.
    """

    values: np.ndarray
    phases: np.ndarray
    fom: np.ndarray
    symmetry_fom: float
    r_factor: float
    r_factors: tuple[float, ...]
    origin: np.ndarray


def grid_size(lattice: np.ndarray, d_min_A: float, hkl: np.ndarray) -> int:
    """An even FFT-friendly n with SAMPLING points per d_min along the longest edge, and room for
    every index (|h| < n/2)."""
    longest = float(np.max(np.linalg.norm(lattice, axis=1)))
    need = max(math.ceil(SAMPLING * longest / d_min_A), 2 * int(np.abs(hkl).max(initial=0)) + 2)
    n = need + need % 2
    while max(_prime_factors(n)) > 5:
        n += 2
    return n


def _prime_factors(n: int) -> list[int]:
    factors, p = [], 2
    while p * p <= n:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    return factors + ([n] if n > 1 else [])


def _laue_members(hkl: np.ndarray, ops: constraints.SpaceGroupOps) -> tuple[np.ndarray, np.ndarray]:
    """Every hkl of each representative's Laue family: (M, 3) members and (M,) representative index."""
    laue = np.concatenate([ops.rotations, -ops.rotations])
    images = np.einsum("ri,nij->rnj", hkl, laue)
    members, owner = [], []
    for r, family in enumerate(images):
        unique = np.unique(family, axis=0)
        members.append(unique)
        owner.append(np.full(len(unique), r))
    if not members:
        return np.zeros((0, 3), dtype=int), np.zeros(0, dtype=int)
    return np.concatenate(members).astype(int), np.concatenate(owner)


def charge_flip(amplitudes: Amplitudes, lattice: np.ndarray, ops: constraints.SpaceGroupOps,
                electrons: float | None = None, n: int | None = None, starts: int = STARTS,
                cycles: int = CYCLES, delta_sigma: float = DELTA_SIGMA, start: np.ndarray | None = None,
                biso: float = 0.0, rng: np.random.Generator | None = None) -> FlipResult:
    """Phases and density of the crystal whose amplitudes are given.

    lattice: rows a, b, c in Å; ops: the space group in the setting of the hkl; electrons: ΣZ of the
    cell (F(000)). ``start``: a density grid (any size, fractional i/m) whose phases start the first
    run instead of random ones, e.g. a network's prediction; the other runs start at random.
    ``biso`` (Å²) damps the final map by exp(−B/(4d²)), e.g. to the B of a CMED grid
    (model.density.grid_biso) so that the two describe the same smoothed density.
    """
    if len(amplitudes.hkl) == 0:
        raise InputError(None, "charge flipping needs at least one reflection")
    rng = rng or np.random.default_rng(0)
    lattice = np.asarray(lattice, dtype=float)
    members, owner = _laue_members(amplitudes.hkl, ops)
    n = n or grid_size(lattice, float(amplitudes.d.min()), members)
    shape = (n, n, n)
    half = members[:, 2] >= 0  # the rfft half-space; the other half is its Friedel mirror
    index = tuple((members[half] % n).T)
    amplitude = np.zeros((n, n, n // 2 + 1))
    amplitude[index] = _normalised(amplitudes)[owner[half]]
    observed = amplitude > 0
    # internally the rfft of ρ, i.e. conj(F)·n³/V: the flipping does not depend on the sign convention
    seeds = []
    if start is not None:
        seeds.append(np.angle(_spectrum_at(np.asarray(start, dtype=float), members[half], rng)))
    while len(seeds) < starts:
        seeds.append(rng.uniform(-np.pi, np.pi, len(index[0])))
    weight = amplitudes.f_obs[owner] ** 2
    runs = []
    for phases in seeds[:max(starts, 1)]:
        f = np.zeros(amplitude.shape, dtype=complex)
        f[index] = amplitude[index] * np.exp(1j * phases)
        f, r_factor = _flip(f, amplitude, observed, shape, cycles, delta_sigma)
        # crystallographic F(h) of every member, from the final map
        full = np.conj(np.fft.fftn(np.fft.irfftn(f, s=shape, axes=(0, 1, 2))))
        origin, phases, fom = _symmetrise(full, members, ops, n)
        runs.append((float(np.sum(weight * fom) / np.sum(weight)), r_factor, origin, phases, fom))
    symmetry_fom, r_factor, origin, phases, fom = max(runs, key=lambda run: run[0])
    volume = abs(float(np.linalg.det(lattice)))
    damping = np.exp(-biso / (4 * amplitudes.d[owner] ** 2))
    f_members = amplitudes.f_obs[owner] * damping * np.exp(1j * phases)
    grid = np.zeros(shape, dtype=complex)
    grid[tuple((members % n).T)] = f_members
    values = np.fft.fftn(grid).real / volume
    f000 = electrons if electrons is not None else -float(values.min()) * volume
    values = values + f000 / volume
    first = np.unique(owner, return_index=True)[1]
    return FlipResult(values.astype(np.float32), phases[first], fom[first], symmetry_fom, r_factor,
                      tuple(run[1] for run in runs), origin)


def _normalised(amplitudes: Amplitudes) -> np.ndarray:
    """|E|: each |F| over the root-mean-square |F| of its resolution shell, which removes the fall-off
    of the form factors and B, so the flipping sees point-like atoms."""
    s2 = 0.25 / amplitudes.d ** 2
    edges = np.quantile(s2, np.linspace(0, 1, min(WILSON_SHELLS, len(s2)) + 1))
    shell = np.clip(np.searchsorted(edges, s2, side="right") - 1, 0, len(edges) - 2)
    counts = np.bincount(shell)
    rms = np.sqrt(np.bincount(shell, weights=amplitudes.f_obs ** 2) / np.maximum(counts, 1))
    return amplitudes.f_obs / np.maximum(rms[shell], 1e-300)


def _spectrum_at(values: np.ndarray, hkl: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """rfft coefficients of a grid at hkl (internal convention); random phases beyond its resolution."""
    m = values.shape[0]
    spectrum = np.fft.fftn(values)
    inside = np.all(np.abs(hkl) < m // 2, axis=1)
    out = np.exp(1j * rng.uniform(-np.pi, np.pi, len(hkl)))
    out[inside] = spectrum[tuple((hkl[inside] % m).T)]
    return out


def _flip(f: np.ndarray, amplitude: np.ndarray, observed: np.ndarray, shape: tuple[int, int, int],
          cycles: int, delta_sigma: float) -> tuple[np.ndarray, float]:
    """``cycles`` flipping cycles from the half-spectrum f; the last F and its R factor."""
    r_factor = 1.0
    total = float(amplitude[observed].sum())
    for _ in range(cycles):
        rho = np.fft.irfftn(f, s=shape, axes=(0, 1, 2))
        delta = delta_sigma * rho.std()
        rho = np.where(rho < delta, -rho, rho)
        g = np.fft.rfftn(rho)
        modulus = np.abs(g)
        scale = float((amplitude[observed] * modulus[observed]).sum() / max((modulus[observed] ** 2).sum(), 1e-300))
        r_factor = float(np.abs(amplitude[observed] - scale * modulus[observed]).sum()) / total
        f000 = g[0, 0, 0]
        f = np.where(observed, amplitude * g / np.maximum(modulus, 1e-300), 0)
        f[0, 0, 0] = f000
    return f, r_factor


def _symmetrise(full: np.ndarray, members: np.ndarray, ops: constraints.SpaceGroupOps,
                n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The origin (fractional) where the map best obeys the group, and each member's symmetry-averaged
    phase (radians) and figure of merit there.

    The origin shift s multiplies F(h) by exp(2πi h·s); the agreement Re Σ_g Σ_h conj F(h) F(hR)
    exp(2πi h·t) exp(−2πi (h − hR)·s) is a Fourier series in s, evaluated on every shift at once.
    """
    f = full[tuple((members % n).T)]
    images = np.einsum("mi,gij->gmj", members, ops.rotations)  # hR for every op
    f_images = full[tuple((images % n).transpose(2, 0, 1))]  # (G, M)
    twist = np.exp(2j * np.pi * np.einsum("mi,gi->gm", members, ops.translations))
    m = SHIFT_OVERSAMPLING * n
    series = np.zeros((m, m, m), dtype=complex)
    frequency = (members[None] - images) % m
    np.add.at(series, tuple(frequency.transpose(2, 0, 1)), np.conj(f)[None] * f_images * twist)
    agreement = np.fft.fftn(series).real
    origin = np.array(np.unravel_index(int(np.argmax(agreement)), agreement.shape)) / m
    shifted = f_images * np.exp(2j * np.pi * images @ origin) * twist
    average = shifted.sum(axis=0)
    fom = np.abs(average) / np.maximum(np.abs(shifted).sum(axis=0), 1e-300)
    return origin, np.angle(average), fom


def wilson_scale(d: np.ndarray, f2: np.ndarray, multiplicity: np.ndarray,
                 composition: Mapping[str, float], lattice_points: int = 1) -> float:
    """The factor K that puts relative |F|² on the absolute scale (|F|²_abs = f2 / K), from the
    Wilson plot ln(⟨|F|²⟩ / (p Σ f²)) = ln K − 2B s² over shells of s² = 1/(4d²) (d in Å, f2 per hkl
    of each family, multiplicity its hkl count, composition the atoms of the cell, p its lattice
    points: a centred cell's reflections that are not extinct carry p times the mean)."""
    symbols = list(composition)
    coeffs = torch.as_tensor(scattering.form_factor_coeffs(symbols), dtype=torch.float64)
    f = scattering.form_factors_torch(torch.as_tensor(d, dtype=torch.float64), coeffs).numpy()
    expected = lattice_points * (f ** 2) @ np.array([composition[s] for s in symbols], dtype=float)
    s2 = 0.25 / d ** 2
    edges = np.quantile(s2, np.linspace(0, 1, min(WILSON_SHELLS, len(d)) + 1))
    shell = np.clip(np.searchsorted(edges, s2, side="right") - 1, 0, len(edges) - 2)
    weight = np.bincount(shell, weights=multiplicity)
    used = weight > 0
    observed = np.bincount(shell, weights=multiplicity * f2)[used]
    ratio = observed / np.bincount(shell, weights=multiplicity * expected)[used]
    x = np.bincount(shell, weights=multiplicity * s2)[used] / weight[used]
    good = ratio > 0
    if good.sum() < 2:
        return float(np.sum(multiplicity * f2) / np.sum(multiplicity * expected))
    _, intercept = np.polyfit(x[good], np.log(ratio[good]), 1, w=np.sqrt(weight[used][good]))
    return math.exp(intercept)


def amplitudes_from_pattern(pattern: Pattern, signal: np.ndarray, lattice: Lattice, space_group: int,
                            zero: float, fwhm_poly: np.ndarray,
                            composition: Mapping[str, float] | None = None) -> Amplitudes:
    """Amplitudes of the reflections of the indexed cell (standard setting of ``space_group``) from
    a background-subtracted pattern ``signal``: each cluster of overlapping reflections' integrated
    intensity (model.extraction.clusters) split equally over its hkl. On the absolute scale when the
    cell's composition (atoms per cell) is given. zero in degrees 2θ; fwhm_poly as for clusters."""
    c = clusters(pattern, signal, lattice, space_group, zero, fwhm_poly)
    per_hkl = np.clip(c.observed, 0, None)[c.group] / np.bincount(c.group, weights=c.weight)[c.group]
    theta = bragg_theta(c.d, pattern.wavelength.ka1)
    multiplicity = np.round(c.weight / lorentz_polarisation(theta))
    if composition:
        symbol = spglib.get_spacegroup_type(standard_hall_numbers()[space_group]).international_short
        per_hkl = per_hkl / wilson_scale(c.d, per_hkl, multiplicity, composition, LATTICE_POINTS[symbol[0]])
    return Amplitudes(c.hkl, np.sqrt(per_hkl), c.d)


def amplitudes_from_structure(structure: Structure, d_min_A: float, overlap_A: float = 1e-4) -> Amplitudes:
    """Ideal powder amplitudes (e, absolute, B = 0) of a structure's Laue families with d ≥ d_min:
    families whose d differ by less than overlap_A (Å) overlap and share their intensity equally."""
    ops = constraints.space_group_ops(structure)
    hkl, multiplicity = constraints.hkl_families(structure.lattice.metric_tensor, ops, d_min_A)
    d = 1 / np.sqrt(np.einsum("ri,ij,rj->r", hkl, np.linalg.inv(structure.lattice.metric_tensor), hkl))
    symbols = [site.specie.symbol for site in structure]
    f2 = scattering.structure_factor_sq_torch(
        torch.as_tensor(hkl, dtype=torch.float64), torch.as_tensor(d), torch.as_tensor(structure.frac_coords),
        torch.as_tensor(scattering.form_factor_coeffs(symbols), dtype=torch.float64),
        torch.ones(len(symbols), dtype=torch.float64), torch.zeros(len(symbols), dtype=torch.float64)).numpy()
    order = np.argsort(-d)
    line = np.empty(len(d), dtype=int)
    line[order] = np.concatenate([[0], np.cumsum(-np.diff(d[order]) > overlap_A)])
    shared = (np.bincount(line, weights=multiplicity * f2) / np.bincount(line, weights=multiplicity))[line]
    return Amplitudes(hkl, np.sqrt(shared), d)
