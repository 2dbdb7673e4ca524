"""Electron density of a crystal on a grid of fractional coordinates: the CMED (DESIGN.md §3–4).

Independent-atom model: ρ(r) = Σ_atoms occ·ρ_Z(r − r_j) over the lattice, ρ_Z the Fourier
transform of the atom's X-ray form factor times the Debye–Waller factor exp(−B s²),
s = sinθ/λ = 1/(2d) in Å⁻¹.
The form factor is the one pymatgen's XRDCalculator and model.scattering use, from the same table
(``model.scattering.form_factor_coeffs``), so densities and simulated patterns agree:
f(s) = Z − 41.78214 s² Σᵢ aᵢ exp(−bᵢ s²) (Mott–Bethe formula applied to 4-Gaussian electron
form factors; it has no separate constant, the Z term plays that part).

The grid is the Fourier series of ρ: F(hkl) for every |h|, |k|, |l| < N/2, then one inverse FFT.
Consequences worth knowing:
- the integral over the cell (sum × voxel volume) is Σ occ·Z exactly, whatever N and B;
- the grid is exactly invariant under the space group (the Nyquist terms, which have no symmetric
  partner on an even grid, are left out);
- the values are ρ band-limited to the grid. They equal point samples of ρ only when F has decayed
  by the Nyquist face; the default B (``grid_biso``) makes sure it has, see there.

Grid convention: values[i, j, k] is ρ at fractional (i/N, j/N, k/N) along a, b, c, in e/Å³.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
from pymatgen.core import Lattice, Structure

from model.errors import InputError
from model.scattering import form_factor_coeffs
from model.structure import check_structure, conventional_standard

GRID_LIMITS = (4, 512)
# what a map is, as exports and the window name it: kind → the words for it
MAP_KINDS = {
    "calculated": "calculated from the atoms (independent-atom model)",
    "network": "predicted by the network",
    "charge flipping": "charge flipping of the observed intensities",
    "F_obs": "Fourier map of the observed amplitudes with the model's phases",
    "F_calc": "Fourier map of the model's amplitudes and phases",
    "difference": "difference Fourier map (F_obs − F_calc)",
    "2F_obs-F_calc": "2F_obs − F_calc Fourier map (the model's phases)",
}
SAME_CELL_A = 1e-3  # Å, a map's atoms must lie in its own cell to this
PHASE_BLOCK = 1 << 22  # atoms × N² phase factors held at once (32 MB of complex64)
MOTT_BETHE = 41.78214  # Å⁻² e; pymatgen's constant, so f(s) matches its XRDCalculator


@dataclass(frozen=True, eq=False)
class Density:
    """ρ on an N×N×N grid of fractional coordinates, in e/Å³, with the lattice it belongs to.

    ``lattice`` rows are a, b, c in Å (Cartesian); ``structure`` is the cell the grid spans
    (the conventional standard cell for ``cmed``), when known, with the atoms exports list; its
    lattice must be ``lattice``. ``kind`` says which map it is (a key of MAP_KINDS).
    """

    values: np.ndarray
    lattice: np.ndarray
    structure: Structure | None = None
    kind: str = "calculated"

    def __post_init__(self):
        values = np.asarray(self.values, dtype=np.float32)
        lattice = np.asarray(self.lattice, dtype=float)
        if values.ndim != 3 or len(set(values.shape)) != 1:
            raise InputError(None, f"a density grid must be N×N×N, got shape {values.shape}")
        if lattice.shape != (3, 3) or abs(np.linalg.det(lattice)) < 1e-6:
            raise InputError(None, "a density needs a non-degenerate 3×3 lattice (rows a, b, c in Å)")
        if self.kind not in MAP_KINDS:
            raise ValueError(f"map kind {self.kind!r} is not one of {', '.join(MAP_KINDS)}")
        # the Mg2Si export once paired a candidate's tetragonal grid with the cubic solution
        if self.structure is not None and not np.allclose(self.structure.lattice.matrix, lattice,
                                                          atol=SAME_CELL_A):
            raise ValueError(f"a density's atoms must lie in its own cell: {self.structure.lattice.abc} Å "
                             f"is not the grid's {tuple(np.linalg.norm(lattice, axis=1))} Å")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "lattice", lattice)

    @property
    def n(self) -> int:
        return self.values.shape[0]

    @property
    def volume_A3(self) -> float:
        return float(abs(np.linalg.det(self.lattice)))

    @property
    def voxel_volume_A3(self) -> float:
        return self.volume_A3 / self.n**3

    @property
    def description(self) -> str:
        """One line: which map, of what, in which cell (a b c in Å, α β γ in degrees)."""
        formula = self.structure.composition.reduced_formula if self.structure is not None else "no atoms"
        a, b, c, alpha, beta, gamma = Lattice(self.lattice).parameters
        return (f"{self.kind} map, {MAP_KINDS[self.kind]}: {formula}, cell {a:.5f} {b:.5f} {c:.5f} Å "
                f"{alpha:.3f} {beta:.3f} {gamma:.3f}°")

    @property
    def electron_count(self) -> float:
        """∫ρ over the cell (e): the grid sum times the voxel volume."""
        return float(self.values.sum(dtype=np.float64)) * self.voxel_volume_A3


def grid_biso(lattice: np.ndarray, n: int) -> float:
    """The default B (Å²): the smallest that keeps an n³ grid of this cell faithful.

    B = 8π²Δ², Δ the longest voxel edge (longest cell edge / n): the atom's core Gaussian then has
    σ = Δ, and at the nearest face of the Fourier box (s = 1/(4Δ)) the form factor has fallen to
    exp(−π²/2) ≈ 0.7 % of its value at s = 0, so band-limiting hardly changes ρ (on the shared
    structures at 32³ the grid is within 0.6 % of the peak density of exact point samples).
    Atoms therefore look alike in grid units whatever the cell size (a 32³ grid of a 4 Å cell
    gets B ≈ 1.2 Å², of a 10 Å cell B ≈ 7.7 Å²).
    """
    longest = float(np.max(np.linalg.norm(np.asarray(lattice, dtype=float), axis=1)))
    return 8.0 * math.pi**2 * (longest / n) ** 2


def cmed(structure: Structure, n: int = 32, biso: float | None = None,
         conventional: bool = True) -> Density:
    """The CMED of ``structure`` on an n³ grid (e/Å³), in its conventional standard cell.

    ``biso`` is B (Å²) for every atom; None → ``grid_biso`` of the cell and n. With
    ``conventional=False`` the given cell is used as it is (faster when it is already standard).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not (
            GRID_LIMITS[0] <= n <= GRID_LIMITS[1]):
        raise InputError(None, f"grid size {n!r} is outside {GRID_LIMITS[0]}–{GRID_LIMITS[1]}")
    if biso is not None and not (math.isfinite(biso) and 0.0 <= biso <= 1000.0):
        raise InputError(None, f"Biso {biso!r} Å² is outside 0–1000 Å²")
    check_structure(structure)
    if conventional:
        structure = conventional_standard(structure)
    n = int(n)
    b = grid_biso(structure.lattice.matrix, n) if biso is None else float(biso)
    return Density(grid_values(structure_factor_grid(structure, n, b), n, structure.volume),
                   structure.lattice.matrix, structure)


def structure_factor_grid(structure: Structure, n: int, biso: float | np.ndarray) -> np.ndarray:
    """F(hkl) in e of the cell's atoms on the half grid of a real FFT of an n³ grid, complex64.

    Index [h, k, l] (negative h, k wrapped, l ≥ 0) as ``np.fft.rfftn`` lays it out; F(000) is
    Σ occ·Z. ``biso`` is B (Å²) for every atom or one per site. The Nyquist planes of an even
    grid are 0 (see the module docstring).
    """
    symbols, frac, occupancy, site = _atoms(structure)
    b_rows = np.broadcast_to(np.asarray(biso, dtype=np.float32), (len(structure),))[site]
    h_full, h_half, s2 = reciprocal_grid(structure.lattice.matrix, n)
    f_hkl = np.zeros(s2.shape, dtype=np.complex64)
    elements = list(dict.fromkeys(symbols))
    coeffs = dict(zip(elements, form_factor_coeffs(elements)))
    # atoms of one element and one B share a form factor: one evaluation per pair
    for symbol, b in dict.fromkeys(zip(symbols, b_rows.tolist())):
        rows = (symbols == symbol) & (b_rows == b)
        f_hkl += _form_factor(coeffs[symbol], s2, b) * _phase_sum(frac[rows], occupancy[rows], h_full, h_half)
    if n % 2 == 0:  # h = −N/2 has no +N/2 partner: keeping it would break the symmetry
        f_hkl[n // 2, :, :] = 0
        f_hkl[:, n // 2, :] = 0
        f_hkl[:, :, n // 2] = 0
    return f_hkl


def reciprocal_grid(lattice: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices along a full axis (0, 1, …, −1) and the half axis of a real FFT of an n³ grid,
    and s² = 1/(4d²) (Å⁻²) at every [h, k, l] of the half grid (float32)."""
    h_full = np.fft.fftfreq(n, 1.0 / n)  # 0, 1, …, −1 (integers as floats)
    h_half = h_full[: n // 2 + 1]  # last axis of a real FFT
    reciprocal = Lattice(lattice).reciprocal_lattice_crystallographic.matrix
    return h_full, h_half, _s_squared(reciprocal, h_full, h_half)


def grid_values(f_hkl: np.ndarray, n: int, volume_A3: float) -> np.ndarray:
    """ρ (e/Å³, float32) on the n³ grid from F(hkl) (e) on the half grid of a real FFT:
    ρ(x) = (1/V) Σ F(h) e^{2πi h·x} with F(h) = Σ_j f_j e^{−2πi h·x_j} (this module's sign)."""
    values = np.fft.irfftn(f_hkl, s=(n, n, n), axes=(0, 1, 2)) * (n**3 / volume_A3)
    return values.astype(np.float32)


def _atoms(structure: Structure) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Element symbols, fractional coordinates, occupancies and site indices, one row per
    (site, element)."""
    symbols, frac, occupancy, index = [], [], [], []
    for n, site in enumerate(structure):
        for specie, occ in site.species.items():
            symbols.append(specie.symbol)  # Species("Fe", 2).symbol is "Fe"
            frac.append(site.frac_coords)
            occupancy.append(occ)
            index.append(n)
    return (np.array(symbols), np.array(frac, dtype=float), np.array(occupancy, dtype=np.float32),
            np.array(index, dtype=int))


def _s_squared(reciprocal: np.ndarray, h_full: np.ndarray, h_half: np.ndarray) -> np.ndarray:
    """s² = |h a* + k b* + l c*|² / 4 (Å⁻²) on the half grid of a real FFT, float32."""
    g = (reciprocal @ reciprocal.T).astype(np.float32)  # reciprocal metric tensor
    h = h_full.astype(np.float32)[:, None, None]
    k = h_full.astype(np.float32)[None, :, None]
    l = h_half.astype(np.float32)[None, None, :]
    return 0.25 * (g[0, 0] * h * h + g[1, 1] * k * k + g[2, 2] * l * l
                   + 2 * (g[0, 1] * h * k + g[0, 2] * h * l + g[1, 2] * k * l))


def _phase_sum(frac: np.ndarray, occupancy: np.ndarray, h_full: np.ndarray,
               h_half: np.ndarray) -> np.ndarray:
    """Σ_j occ_j e^{−2πi h·x_j} on the half grid of a real FFT.

    The phase factorises over the three axes, so a matrix product sums over atoms (a block of
    atoms at a time, to bound memory on large grids).
    """
    n = h_full.size
    total = np.zeros((n * n, h_half.size), dtype=np.complex64)
    block = max(1, PHASE_BLOCK // (n * n))
    for start in range(0, len(frac), block):
        x = frac[start:start + block]
        phase_a, phase_b, phase_c = (np.exp(-2j * np.pi * np.outer(x[:, axis], h)).astype(np.complex64)
                                     for axis, h in enumerate((h_full, h_full, h_half)))
        weighted_ab = phase_a[:, :, None] * (phase_b * occupancy[start:start + block, None])[:, None, :]
        total += weighted_ab.reshape(len(x), n * n).T @ phase_c
    return total.reshape(n, n, h_half.size)


def _form_factor(coeffs: np.ndarray, s2: np.ndarray, biso: float) -> np.ndarray:
    """f(s)·exp(−B s²) from a [Z, a₁…a₄, b₁…b₄] row (see the module docstring), float32."""
    f = np.float32(coeffs[0]) * np.exp(-np.float32(biso) * s2)
    for a, b in zip(coeffs[1:5], coeffs[5:9]):
        if a:
            f -= np.float32(MOTT_BETHE * a) * s2 * np.exp(-np.float32(b + biso) * s2)
    return f


Gridded = TypeVar("Gridded", Density, np.ndarray)


def resample_fractional(values: np.ndarray, m: int) -> np.ndarray:
    """The grid's Fourier interpolant at fractional (i/m, j/m, k/m): (…, N, N, N) → (…, m, m, m).

    The interpolant is the trigonometric polynomial through the samples (the even-grid Nyquist term
    split evenly between ±N/2, so it is real); any m, up or down (e.g. the 25³ metric grid).
    Leading axes are a batch.
    """
    values = np.asarray(values)
    if values.ndim < 3:
        raise InputError(None, f"a density grid must be 3-D, got shape {values.shape}")
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not (
            GRID_LIMITS[0] <= m <= GRID_LIMITS[1]):
        raise InputError(None, f"grid size {m!r} is outside {GRID_LIMITS[0]}–{GRID_LIMITS[1]}")
    out = values.astype(np.float64)
    for axis in (-3, -2, -1):
        matrix = _interpolation_matrix(values.shape[axis], int(m))
        out = np.moveaxis(np.tensordot(matrix, out, axes=(1, axis)), 0, axis)
    return out.astype(values.dtype if values.dtype.kind == "f" else np.float64)


def fourier_upsample(density_or_values: Gridded, n_new: int) -> Gridded:
    """Finer grid by Fourier interpolation (≡ zero-padding the FFT); exact at the original points.

    Takes and returns a Density (same lattice and structure) or a bare (N, N, N) array.
    """
    values = density_or_values.values if isinstance(density_or_values, Density) else density_or_values
    if n_new < np.shape(values)[0]:
        raise InputError(None, f"cannot upsample a {np.shape(values)[0]}³ grid to {n_new}³")
    finer = resample_fractional(values, n_new)
    if isinstance(density_or_values, Density):
        return replace(density_or_values, values=finer)
    return finer


def _interpolation_matrix(n: int, m: int) -> np.ndarray:
    """(m, n) real matrix taking n periodic samples to the interpolant's values at i/m."""
    h = np.fft.fftfreq(n, 1.0 / n)  # includes −N/2 for even n; Re() splits it into ±N/2
    x_new = np.arange(m) / m
    x_old = np.arange(n) / n
    kernel = np.exp(2j * np.pi * np.outer(x_new, h)) @ np.exp(-2j * np.pi * np.outer(h, x_old))
    return kernel.real / n
