"""Fourier maps of a refined structure from the measured pattern (DESIGN.md §4, issue 16).

Rietveld's F_obs: the observed intensity above background at each point i is shared among the
reflections in the ratio of their calculated contributions c_hkl(i), so
    I_obs(hkl) = Σ_i c_hkl(i)·(y_obs − bkg)_i / (y_calc − bkg)_i
              = I_calc(hkl) · Σ_i p(i)·r_i / Σ_i p(i),   r_i = (y_obs − bkg)_i / (y_calc − bkg)_i,
p the line's peak shape at any scale (its weight, multiplicity, LP, preferred orientation and
scale cancel). Then |F_obs| = |F_calc|·sqrt(I_obs/I_calc): the corrections need not be undone.
With several phases y_calc holds all of them, so this is the first phase's share of the
observed intensity (the others' calculated intensity is taken off in proportion).

The ratio belongs to a powder line (one d), so every hkl of the line gets it: F_calc(hkl) is
computed on the whole FFT grid from all atoms of the conventional cell (model.density), which is
the expansion to the full sphere, consistent with the space group by construction. All maps use
the same reflections: those whose Kα1 line lies in the measured range, and F(000) = Σ electrons
(0 for the difference map), so they are in absolute e/Å³ and Fo − Fc is exactly the F_obs map
minus the F_calc map. Phases are the model's throughout, except in the charge-flipping map
(``charge_flipped``): the observed intensities extracted in the same cell and space group, phased
by charge flipping alone, the map the data give with no model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace

import numpy as np
import torch
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from scipy import ndimage

from model import charge_flipping
from model.constraints import SYMPREC, space_group_ops
from model.density import (
    GRID_LIMITS,
    Density,
    grid_biso,
    grid_values,
    reciprocal_grid,
    structure_factor_grid,
)
from model.errors import InputError
from model.instrument import Instrument
from model.pattern import Pattern
from model.result import Fit, Progress, SolveResult
from model.scattering import reflections
from model.simulate import params_torch, peaks_torch
from model.structure import conventional_standard

GRID_STEP_A = 0.25  # default largest grid step (Å): finer than any powder pattern resolves
PEAK_COUNT = 20  # peaks and holes listed for a difference map
SAME_PEAK_A = 0.5  # Å: extrema this close to a symmetry image of a listed one are that one
MAX_CANDIDATES = 20_000  # local extrema examined, strongest first
LINES_AT_ONCE = 32  # line profiles evaluated together, neighbours in 2θ (bounds the arrays)
WINDOW_FWHM = 25  # FWHM either side of a line that hold its profile (model.simulate cuts at 20)
SAME_D = 1e-6  # relative: a grid point belongs to the line whose 1/d agrees to this
FLIP_STARTS, FLIP_CYCLES = 3, 300  # charge flipping of the observed intensities (charge_flipped)
MAP_WEIGHTS = {  # F(hkl) of each map as a multiple of F_calc, in terms of q = |F_obs|/|F_calc|
    "F_obs": lambda q: q,
    "F_calc": lambda q: np.ones_like(q),
    "difference": lambda q: q - 1.0,
    "2F_obs-F_calc": lambda q: 2.0 * q - 1.0,
}


@dataclass(frozen=True)
class MapPeak:
    """A local maximum (peak, height > 0) or minimum (hole, < 0) of a map: fractional x y z in the
    map's cell, height in e/Å³ (signed), the nearest atom's label (element and the number of its
    symmetry-distinct site, e.g. "O2") and its distance in Å, and sigma: the map's noise there
    (e/Å³, the pattern's counting statistics carried through F_obs; NaN where not known), so
    height/sigma is the feature's significance."""

    xyz: tuple[float, float, float]
    height: float
    nearest_atom: str
    distance_A: float
    sigma: float = math.nan

    @property
    def significance(self) -> float:
        """height/sigma: how many of its noise σ the feature stands out (signed)."""
        return self.height / self.sigma if self.sigma > 0 else math.nan


def grid_size(lattice: np.ndarray, step_A: float = GRID_STEP_A) -> int:
    """The smallest even grid size N whose step along the longest cell edge is ≤ step_A (Å);
    even, so the grid holds every point of a centred or screw-related pattern."""
    longest = float(np.max(np.linalg.norm(np.asarray(lattice, dtype=float), axis=1)))
    n = 2 * math.ceil(longest / step_A / 2)
    return int(min(max(n, GRID_LIMITS[0]), GRID_LIMITS[1]))


@dataclass(frozen=True, eq=False)
class LineRatios:
    """Per powder line: d (Å), I_obs/I_calc (NaN: not observed) and its esd from the counting
    statistics (NaN where the weights are not known)."""

    d_A: np.ndarray
    ratio: np.ndarray
    esd: np.ndarray


def line_ratios(fit: Fit, instrument: Instrument, d_A: np.ndarray, weights: np.ndarray | None = None,
                gof: float = 1.0) -> LineRatios:
    """I_obs/I_calc of the lines at spacings d_A (Å) from the fitted profile (module docstring);
    NaN for a line whose Kα1 peak lies outside the scan or on no fitted point. ``weights`` (the
    fit's least-squares weights, one per point, 0 = excluded) leaves out excluded regions and,
    scaled by the goodness of fit ``gof`` (σᵢ² = gof²/wᵢ), gives the ratios' esds."""
    x = np.ascontiguousarray(fit.two_theta, dtype=float)  # torch.searchsorted wants it so
    net_calc = np.asarray(fit.calculated, dtype=float) - fit.background
    used = net_calc > 1e-9 * max(float(net_calc.max(initial=0.0)), 1e-300)  # r_i is defined there
    known = weights is not None and len(weights) == len(x)
    if known:
        used &= np.asarray(weights) > 0
    safe = np.where(used, net_calc, 1.0)
    r = np.where(used, (np.asarray(fit.observed, dtype=float) - fit.background) / safe, 0.0)
    var_r = np.where(used, gof**2 / np.where(used, weights, 1.0) / safe**2, 0.0) if known else np.zeros_like(r)
    d_A = np.asarray(d_A, dtype=float)
    sums = np.zeros((3, d_A.size))  # Σp·r, Σp, Σp²·var(r) per line
    columns = np.stack([r, used.astype(float)], axis=1)
    lo, hi = _windows(instrument, d_A)
    for start in range(0, d_A.size, LINES_AT_ONCE):
        block = slice(start, start + LINES_AT_ONCE)
        # only the points these lines reach: the arrays are (lines × their span), not the scan
        first, end = np.searchsorted(x, lo[block].min()), np.searchsorted(x, hi[block].max(), side="right")
        if end <= first:
            continue
        d = torch.from_numpy(d_A[block])[:, None]
        # one batch row per line: its own profile at unit weight
        params = params_torch([instrument] * d.shape[0], dtype=torch.float64)
        wavelength = torch.full((d.shape[0],), instrument.wavelength.ka1, dtype=torch.float64)
        with torch.no_grad():
            shape = peaks_torch(d, torch.ones_like(d), torch.from_numpy(x[first:end]), wavelength, params).numpy()
        sums[:2, block] = (shape @ columns[first:end]).T
        sums[2, block] = (shape**2) @ var_r[first:end]
    shares, totals, variance = sums
    position = instrument.two_theta(d_A)
    observed = (position >= x[0]) & (position <= x[-1]) & (totals > 0)
    totals = np.where(totals > 0, totals, 1.0)
    esd = np.sqrt(variance) / totals if known else np.full(d_A.size, np.nan)
    return LineRatios(d_A, np.where(observed, shares / totals, np.nan), np.where(observed, esd, np.nan))


def _windows(instrument: Instrument, d_A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) degrees 2θ that each line's profile (Kα1 and any Kα2) stays within."""
    centres = [instrument.two_theta(d_A)]
    if instrument.doublet is not None:
        centres.append(instrument.two_theta(d_A, instrument.doublet[0]))
    reach = WINDOW_FWHM * instrument.fwhm(np.max(centres, axis=0))
    return np.min(centres, axis=0) - reach, np.max(centres, axis=0) + reach


@dataclass(frozen=True, eq=False)
class FourierData:
    """What the maps are made of, on the half grid of a real FFT of an n³ grid of ``cell`` (the
    conventional standard cell, B in Å² as the site property "biso"): F_calc (e), the index of
    each point's observed line (−1: none; F(000) is −1 too), and per line |F_obs|/|F_calc| and
    its esd."""

    cell: Structure
    n: int
    f_calc: np.ndarray
    line_of: np.ndarray
    q: np.ndarray
    q_esd: np.ndarray


def fourier_data(structure: Structure, fit: Fit, instrument: Instrument, n: int | None = None,
                 weights: np.ndarray | None = None, gof: float = 1.0) -> FourierData:
    """F_calc of a refined ``structure`` (B in Å² as the site property "biso", else 0) on an n³
    grid of its conventional standard cell (n None: ``grid_size``) and the observed lines of
    ``fit`` with the refined ``instrument``; ``weights`` and ``gof`` as ``line_ratios``."""
    cell = conventional_standard(structure, keep_site_properties=True)
    n = grid_size(cell.lattice.matrix) if n is None else int(n)
    if not GRID_LIMITS[0] <= n <= GRID_LIMITS[1]:
        raise InputError(None, f"grid size {n!r} is outside {GRID_LIMITS[0]}–{GRID_LIMITS[1]}")
    biso = np.array(cell.site_properties.get("biso", [0.0] * len(cell)), dtype=float)
    f_calc = structure_factor_grid(cell, n, np.nan_to_num(biso))
    # the lines in the scan, with a margin: line_ratios decides which are observed
    lines = reflections(cell, float(instrument.d(min(float(fit.two_theta[-1]) + 1.0, 179.5))))
    ratios = line_ratios(fit, instrument, lines.d, weights, gof)
    observed = ~np.isnan(ratios.ratio)
    ratio = np.clip(ratios.ratio[observed], 0.0, None)
    q = np.sqrt(ratio)
    # esd of a square root; near 0 the ratio's own scale keeps it finite
    q_esd = ratios.esd[observed] / (2 * np.maximum(q, np.sqrt(np.nan_to_num(ratios.esd[observed]))))
    line_of = _line_index_grid(cell.lattice.matrix, n, 1.0 / lines.d[observed])
    return FourierData(cell, n, f_calc, line_of, q, q_esd)


def fourier_maps(data: FourierData, kinds=tuple(MAP_WEIGHTS)) -> dict[str, Density]:
    """The maps (e/Å³) of ``data``, keyed by model.density.MAP_KINDS; each map's ``structure`` is
    the cell. Coefficients F_calc·w(q) on the observed lines and F(000) (module docstring)."""
    inside = data.line_of >= 0
    q = np.where(inside, np.append(data.q, 1.0)[data.line_of], 0.0)
    inside[0, 0, 0], q[0, 0, 0] = True, 1.0  # F(000): the electrons in the cell
    maps = {}
    for kind in kinds:
        coefficients = np.where(inside, data.f_calc * MAP_WEIGHTS[kind](q), 0.0).astype(np.complex64)
        maps[kind] = Density(grid_values(coefficients, data.n, data.cell.volume), data.cell.lattice.matrix,
                             data.cell, kind=kind)
    return maps


def noise_sigma(data: FourierData, xyz: np.ndarray) -> np.ndarray:
    """(P,) the maps' noise σ (e/Å³) at fractional positions xyz (P, 3) from the esds of |F_obs|:
    the error of a line's ratio is shared by all its hkl, so σ²(x) = Σ_lines σ_q² G_L(x)² / V²
    with G_L(x) = Σ_{hkl in L} F_calc e^{2πi h·x} (large at atoms, where a line's terms add up)."""
    xyz = np.atleast_2d(np.asarray(xyz, dtype=float))
    index = np.argwhere(data.line_of >= 0)
    if index.size == 0 or not np.all(np.isfinite(data.q_esd)):
        return np.full(len(xyz), np.nan)
    h_full, h_half, _ = reciprocal_grid(data.cell.lattice.matrix, data.n)
    hkl = np.stack([h_full[index[:, 0]], h_full[index[:, 1]], h_half[index[:, 2]]], axis=1)
    f = data.f_calc[tuple(index.T)]
    # a half-grid point off the l = 0 plane stands for its Friedel mate too
    twice = np.where(index[:, 2] > 0, 2.0, 1.0)
    terms = twice[:, None] * np.real(f[:, None] * np.exp(2j * np.pi * (hkl @ xyz.T)))
    per_line = np.zeros((data.q.size, len(xyz)))
    np.add.at(per_line, data.line_of[tuple(index.T)], terms)
    return np.sqrt((data.q_esd[:, None] ** 2 * per_line**2).sum(0)) / data.cell.volume


def _line_index_grid(lattice: np.ndarray, n: int, g_lines: np.ndarray) -> np.ndarray:
    """The index (into g_lines) of the line each [h, k, l] of the half grid lies on, found by
    1/d (Å⁻¹); −1 where none has its 1/d (outside the data, absent, or F(000))."""
    g = np.sqrt(4.0 * reciprocal_grid(lattice, n)[2].astype(float))  # 1/d (Å⁻¹)
    order = np.argsort(g_lines)
    # sentinels either side, so every point has two neighbouring lines in 1/d
    g_sorted = np.concatenate([[-np.inf], g_lines[order], [np.inf]])
    line = np.concatenate([[-1], order, [-1]])
    above = np.clip(np.searchsorted(g_sorted, g), 1, g_sorted.size - 1)
    nearer = np.where(g - g_sorted[above - 1] < g_sorted[above] - g, above - 1, above)
    # the grid's s² is float32: the tolerance allows its rounding (≈ 1e-7 of 1/d)
    match = np.abs(g_sorted[nearer] - g) <= SAME_D * g
    return np.where(match, line[nearer], -1)


def map_sigma(density: Density) -> float:
    """σ of a map (e/Å³): the rms deviation of its grid values from their mean."""
    return float(np.std(density.values, dtype=np.float64))


def find_extrema(density: Density, count: int = PEAK_COUNT, sign: int = 0) -> list[MapPeak]:
    """The ``count`` strongest local maxima (sign +1), minima (−1) or both (0) of a map, strongest
    |height| first, one per set of symmetry-equivalent positions of its structure (where it has
    one), each at the sub-voxel position of a parabola through its neighbours along each axis."""
    values = density.values
    heights, indices = [], []
    for direction in ((1, -1) if sign == 0 else (sign,)):
        signed = direction * values
        # periodic boundaries: the filter wraps round the cell
        at = np.argwhere((signed == ndimage.maximum_filter(signed, size=3, mode="wrap")) & (signed > 0))
        heights.append(values[tuple(at.T)])
        indices.append(at)
    heights, indices = np.concatenate(heights), np.concatenate(indices)
    order = np.argsort(-np.abs(heights), kind="stable")[:MAX_CANDIDATES]
    rotations, translations = _symmetry_images(density.structure)
    tolerance = SAME_PEAK_A / np.linalg.norm(density.lattice, axis=1)
    kept: list[tuple[float, np.ndarray]] = []
    taken = {1.0: np.zeros((0, 3)), -1.0: np.zeros((0, 3))}  # images of the kept ones, by sign
    for height, index in zip(heights[order], indices[order]):
        xyz, side = index / values.shape[0], float(np.sign(height))
        offset = taken[side] - xyz
        if np.any(np.all(np.abs(offset - np.round(offset)) <= tolerance, axis=1)):
            continue
        taken[side] = np.concatenate([taken[side], rotations @ xyz + translations])
        kept.append((float(height), _subvoxel(values, index)))
        if len(kept) == count:
            break
    return _labelled(density.structure, kept)


def _subvoxel(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Fractional position of an extremum at grid ``index``: the vertex of the parabola through it
    and its two neighbours along each axis (periodic)."""
    n = values.shape[0]
    position = index.astype(float)
    for axis in range(3):
        before, after = index.copy(), index.copy()
        before[axis], after[axis] = (index[axis] - 1) % n, (index[axis] + 1) % n
        lo, mid, hi = (float(values[tuple(i)]) for i in (before, index, after))
        curvature = lo - 2 * mid + hi
        if curvature != 0:
            position[axis] += float(np.clip(0.5 * (lo - hi) / curvature, -0.5, 0.5))
    return np.mod(np.round(position / n, 9), 1.0)  # rounded: −1e-17 must not become 1.0


def _symmetry_images(structure: Structure | None) -> tuple[np.ndarray, np.ndarray]:
    """(rotations, translations) of the structure's space group in its cell (identity without one)."""
    if structure is None or len(structure) == 0:
        return np.eye(3)[None], np.zeros((1, 3))
    try:
        ops = space_group_ops(structure)
    except InputError:  # no symmetry found is no reason to lose the peaks
        return np.eye(3)[None], np.zeros((1, 3))
    return ops.rotations.astype(float), ops.translations.astype(float)


def _labelled(structure: Structure | None, kept: list[tuple[float, np.ndarray]]) -> list[MapPeak]:
    """MapPeaks with the nearest atom (periodic distance) and its label."""
    if not kept:
        return []
    if structure is None or len(structure) == 0:
        return [MapPeak(tuple(float(v) for v in xyz), height, "", math.nan) for height, xyz in kept]
    labels = site_labels(structure)
    distances = structure.lattice.get_all_distances(np.array([xyz for _, xyz in kept]), structure.frac_coords)
    nearest = np.argmin(distances, axis=1)
    return [MapPeak(tuple(float(v) for v in xyz), float(height), labels[j], float(distances[i, j]))
            for i, ((height, xyz), j) in enumerate(zip(kept, nearest))]


def site_labels(structure: Structure) -> list[str]:
    """A label per site: its majority element and the number of its symmetry-distinct site among
    that element's (Ti1, O1, O2, …), equivalent sites sharing one."""
    try:
        orbit = SpacegroupAnalyzer(structure, symprec=SYMPREC).get_symmetry_dataset().equivalent_atoms
    except Exception:  # noqa: BLE001 — without symmetry every site is its own
        orbit = np.arange(len(structure))
    elements = [max(site.species.items(), key=lambda item: item[1])[0].symbol for site in structure]
    numbers: dict[int, str] = {}
    counts: dict[str, int] = {}
    for element, representative in zip(elements, orbit):
        if int(representative) not in numbers:
            counts[element] = counts.get(element, 0) + 1
            numbers[int(representative)] = f"{element}{counts[element]}"
    return [numbers[int(representative)] for representative in orbit]


def with_maps(result: SolveResult, n: int | None = None) -> SolveResult:
    """A copy of ``result`` with ``maps`` (F_obs, F_calc, difference, 2F_obs-F_calc; e/Å³, on an n³
    grid of its refined structure's conventional cell, n None: ``grid_size``) and ``map_peaks``
    (the difference map's peaks and holes with their noise σ, strongest |height| first).
    Unchanged where there is no refined structure and fit (an attempt that never reached
    refinement). With several phases the maps are the first one's (module docstring)."""
    if result.structure is None or result.fit is None or result.refinement is None:
        return result
    report = result.refinement
    gof = result.gof if math.isfinite(result.gof) and result.gof > 0 else 1.0
    data = fourier_data(result.structure, result.fit, report.instrument, n, report.weights, gof)
    maps = fourier_maps(data)
    peaks = find_extrema(maps["difference"])
    sigma = noise_sigma(data, np.array([p.xyz for p in peaks])) if peaks else []
    return replace(result, maps=maps, map_peaks=[replace(p, sigma=float(s)) for p, s in zip(peaks, sigma)])


def charge_flipped(cell: Structure, fit: Fit, instrument: Instrument, n: int) -> Density | None:
    """The charge-flipping map (e/Å³, F(000) = ΣZ) of the observed intensities of ``fit`` (above
    its background) extracted in ``cell``'s conventional standard setting and space group with the
    refined ``instrument``'s zero, wavelength and TCH widths, on an n³ grid of the cell, smoothed by
    the grid's B (model.density.grid_biso). No phase of the model is used, so the map is found only
    up to an origin shift the space group allows (and, without a centre of symmetry, possibly
    inverted). Deterministic (seeded); None where charge flipping cannot run (too few lines)."""
    lattice = cell.lattice.matrix
    atoms = cell.composition.element_composition.items()
    composition = {el.symbol: amount for el, amount in atoms}
    low, high = float(fit.two_theta[0]), float(fit.two_theta[-1])
    widths = np.polyfit(np.linspace(low, high, 50), instrument.fwhm(np.linspace(low, high, 50)), 2)
    try:
        ops = space_group_ops(cell)
        pattern = Pattern(fit.two_theta, fit.observed, wavelength=instrument.wavelength)
        amplitudes = charge_flipping.amplitudes_from_pattern(
            pattern, fit.observed - fit.background, cell.lattice, ops.number, instrument.zero, widths, composition)
        # every index of the grid's Nyquist range (|h| ≤ |a|/d < n/2)
        kept = amplitudes.d > 2 * np.linalg.norm(lattice, axis=1).max() / n
        amplitudes = charge_flipping.Amplitudes(amplitudes.hkl[kept], amplitudes.f_obs[kept], amplitudes.d[kept])
        electrons = float(sum(el.Z * amount for el, amount in atoms))
        flipped = charge_flipping.charge_flip(amplitudes, lattice, ops, electrons=electrons, n=n, starts=FLIP_STARTS,
                                              cycles=FLIP_CYCLES, biso=grid_biso(lattice, n),
                                              rng=np.random.default_rng(0))
    except (InputError, ValueError, np.linalg.LinAlgError):
        return None
    return Density(flipped.values, lattice, cell, kind="charge flipping")


def with_charge_flipping(result: SolveResult) -> SolveResult:
    """``result`` (with its Fourier maps) with the "charge flipping" map of the F_obs map's cell and
    grid added where charge flipping runs (``charge_flipped``): about a second of CPU, so it is made
    for the solution shown first, not for every alternative."""
    fobs = result.maps.get("F_obs")
    flipped = None if fobs is None else charge_flipped(fobs.structure, result.fit, result.refinement.instrument,
                                                       fobs.n)
    return result if flipped is None else replace(result, maps={**result.maps, "charge flipping": flipped})


def mapped(job: Callable[..., Generator[Progress, None, SolveResult]], *args,
           **kwargs) -> Generator[Progress, None, SolveResult]:
    """Run the solve or refinement ``job(*args, **kwargs)``, passing on its progress, and return its
    result, and each alternative beside it, with their Fourier maps (with_maps), the result also
    with the charge-flipping map of its intensities (with_charge_flipping)."""
    result = yield from job(*args, **kwargs)
    yield Progress("maps", 1.0, "Fourier maps of the refined structure, charge flipping")
    # a solve's result has its maps already: its verdict weighs the difference map
    return replace(with_charge_flipping(result if result.maps else with_maps(result)),
                   alternatives=[with_maps(other) for other in result.alternatives])
