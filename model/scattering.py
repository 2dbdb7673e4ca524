"""X-ray scattering of a crystal: atomic form factors, structure factors, merged reflections.

Conventions follow pymatgen's ``XRDCalculator`` so that sticks agree with it: the same
form-factor table and formula, f(s) = Z − 41.78214·s²·Σᵢ aᵢ·exp(−bᵢ·s²) with s = 1/(2d) in Å⁻¹,
no thermal factor unless B_iso (Å²) is given (then f·exp(−B·s²)), and reflections at equal d
merged into one. Everything here is wavelength-free; ``model.simulate`` turns it into 2θ. The Hill–Howard relation
between phases' profile scales and their mass fractions is here too, for the simulator's mixtures
and the refinement's weight fractions alike.

The structure-factor formula exists once, in torch (``structure_factor_sq_torch``): refinement
needs its gradient, and the NumPy entry points call it on CPU tensors.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import spglib
import torch
from pymatgen.analysis.diffraction.xrd import ATOMIC_SCATTERING_PARAMS
from pymatgen.core import Element, Structure

from model.errors import InputError

# pymatgen's constant in f(s): converts the (electron-scattering-style) coefficients to electrons.
_MOTT_BETHE = 41.78214
# |F|² below this fraction of F(000)² is a systematic absence that did not cancel exactly.
_ABSENT = 1e-12
# Reflections whose 1/d differ by less than this relative amount are one powder line: about
# 1e-5° 2θ at mid angles, where XRDCalculator merges (and far below any instrument's resolution).
_SAME_LINE = 1e-7
# Below this many (reflection × atom) terms the direct sum is cheaper than spglib's symmetry
# search (1–20 ms; measured on the shared structures).
_SYMMETRY_PAYS = 100_000
# spglib's distance tolerance (Å) for the symmetry that lets equivalent hkl share one |F|².
_SYMPREC = 1e-3
# Entries of the (reflections × atoms) phase matrix evaluated at once, to bound memory.
_CHUNK = 1 << 21


def form_factor_coeffs(symbols: list[str]) -> np.ndarray:
    """(A, 9) rows [Z, a₁…a₄, b₁…b₄] of pymatgen's table for each element symbol (b in Å²)."""
    return np.array([_element_coeffs(symbol) for symbol in symbols], dtype=float).reshape(-1, 9)


@functools.cache
def _element_coeffs(symbol: str) -> tuple[float, ...]:
    try:
        pairs = np.asarray(ATOMIC_SCATTERING_PARAMS[symbol], dtype=float)
        z = Element(symbol).Z
    except (KeyError, ValueError):
        raise InputError(None, f"no X-ray form factor for element {symbol!r}") from None
    return (float(z), *pairs[:, 0], *pairs[:, 1])


def structure_factor_sq_torch(hkl: torch.Tensor, d: torch.Tensor, frac: torch.Tensor,
                              form_factor_coeffs: torch.Tensor, occupancy: torch.Tensor,
                              biso: torch.Tensor) -> torch.Tensor:
    """|F(hkl)|² in e² for atoms at fractional ``frac`` (A, 3); differentiable in frac and biso.

    hkl (R, 3), d (R,) in Å, form_factor_coeffs (A, 9) from ``form_factor_coeffs``,
    occupancy (A,), biso (A,) in Å². Form factors are evaluated once per element (per Z).
    """
    s2 = (0.5 / d) ** 2
    # one row per element, found by Z (rows of one element are identical)
    z_values, element_of_atom = torch.unique(form_factor_coeffs[:, 0], return_inverse=True)
    elements = form_factor_coeffs.new_empty(len(z_values), 9).index_copy_(0, element_of_atom, form_factor_coeffs)
    f = form_factors_torch(d, elements)[:, element_of_atom] * occupancy
    if biso.requires_grad or bool(biso.any()):
        f = f * torch.exp(-s2[:, None] * biso)
    phase = (2.0 * torch.pi) * (hkl.to(frac.dtype) @ frac.T)
    return (f * torch.cos(phase)).sum(1) ** 2 + (f * torch.sin(phase)).sum(1) ** 2


def form_factors_torch(d: torch.Tensor, form_factor_coeffs: torch.Tensor) -> torch.Tensor:
    """(R, E) atomic form factors f(s) in electrons at d (R,) Å for the rows of ``form_factor_coeffs``."""
    s2 = (0.5 / d) ** 2
    z, a, b = form_factor_coeffs[:, 0], form_factor_coeffs[:, 1:5], form_factor_coeffs[:, 5:9]
    return z - _MOTT_BETHE * s2[:, None] * (a * torch.exp(-b * s2[:, None, None])).sum(-1)


@dataclass(frozen=True, eq=False)
class Reflections:
    """Powder lines of a crystal, wavelength-free, sorted by decreasing d.

    d (R,) Å; hkl (R, 3) int, the lexicographically largest member of each line;
    multiplicity (R,) int, the number of hkl (Friedel pairs counted twice) in the line;
    f2 (R,) mean |F|² over the line in e², so multiplicity·f2 is the line's total;
    lattice (3, 3) the cell's row vectors a, b, c in Å (orientation-dependent corrections need it).
    """

    d: np.ndarray
    hkl: np.ndarray
    multiplicity: np.ndarray
    f2: np.ndarray
    lattice: np.ndarray

    def __len__(self) -> int:
        return self.d.size

    def subset(self, index: np.ndarray) -> Reflections:
        """The lines selected by a boolean mask or index array."""
        return Reflections(self.d[index], self.hkl[index], self.multiplicity[index],
                           self.f2[index], self.lattice)


def reflections(structure: Structure, d_min_A: float,
                biso: float | dict[str, float] | None = None) -> Reflections:
    """All non-absent powder lines with d ≥ d_min_A (Å); biso in Å², one value or per element."""
    if not (d_min_A > 0 and np.isfinite(d_min_A)):
        raise InputError(None, f"d_min {d_min_A!r} Å must be a positive number")
    symbols, frac, occupancy = _atoms(structure)
    coeffs = form_factor_coeffs(symbols)
    b_atoms = _biso_per_atom(symbols, biso)
    lattice = structure.lattice.matrix.copy()

    hkl, g = _half_sphere(lattice, 1.0 / d_min_A)
    if len(g) == 0:
        return Reflections(np.zeros(0), np.zeros((0, 3), dtype=int), np.zeros(0, dtype=int),
                           np.zeros(0), lattice)
    order = np.argsort(g, kind="stable")
    hkl, g = hkl[order], g[order]
    if len(hkl) * len(frac) > _SYMMETRY_PAYS:
        # |F|² is the same for all hkl related by the Laue group: compute it once per orbit
        kinds = {species: n for n, species in enumerate(structure.species_and_occu)}
        laue = _laue_rotations(lattice, structure.frac_coords, [kinds[sp] for sp in structure.species_and_occu])
        _, first, orbit = np.unique(_orbit_key(hkl, laue), return_index=True, return_inverse=True)
        f2 = _structure_factor_sq(hkl[first], 1.0 / g[first], frac, coeffs, occupancy, b_atoms)[orbit]
    else:
        f2 = _structure_factor_sq(hkl, 1.0 / g, frac, coeffs, occupancy, b_atoms)

    line = np.concatenate([[0], np.cumsum(np.diff(g) > _SAME_LINE * g[1:])])
    count = np.bincount(line)
    f2_line = np.bincount(line, weights=f2) / count
    # lexicographically largest hkl of each line: sort within lines, take the last row
    last = np.lexsort((hkl[:, 2], hkl[:, 1], hkl[:, 0], line))[np.cumsum(count) - 1]
    keep = f2_line > _ABSENT * float(np.sum(occupancy * coeffs[:, 0])) ** 2
    return Reflections(d=1.0 / g[last][keep], hkl=hkl[last][keep], multiplicity=2 * count[keep],
                       f2=f2_line[keep], lattice=lattice)


def metric_family(hkl: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """(R, S, 3) images of each hkl under the S point-group operations of the lattice metric.

    Members of one powder line that the metric makes equivalent; used to average
    direction-dependent corrections (preferred orientation) over a line.
    """
    return _images(hkl, _metric_rotations(tuple(np.round(lattice, 6).ravel())))


@functools.lru_cache(maxsize=4096)  # spglib takes up to ~20 ms; training revisits the same cells
def _metric_rotations(lattice: tuple[float, ...]) -> np.ndarray:
    return _laue_rotations(np.reshape(lattice, (3, 3)), [[0.0, 0.0, 0.0]], [1])


def _laue_rotations(lattice, frac, types) -> np.ndarray:
    """(S, 3, 3) integer rotations of the Laue group (point group plus inversion), spglib's."""
    with warnings.catch_warnings():  # spglib warns about its own error-handling switch
        warnings.simplefilter("ignore", DeprecationWarning)
        symmetry = spglib.get_symmetry((lattice, frac, types), symprec=_SYMPREC)
    rotations = np.eye(3, dtype=int)[None] if symmetry is None else symmetry["rotations"]
    return np.unique(np.concatenate([rotations, -rotations]), axis=0)


def _images(hkl: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    # rotations act on fractional coordinates, so a row hkl maps to hkl·W⁻¹; over a group,
    # the set of W⁻¹ is the set of W
    return np.einsum("ri,sij->rsj", hkl, rotations)


def _orbit_key(hkl: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """(R,) integer naming each hkl's orbit: the largest lexicographic code of its images."""
    span = 2 * int(np.abs(hkl).max(initial=0)) + 1
    # the code h·span² + k·span + l orders |indices| < span/2 lexicographically and is linear,
    # so the codes of all images are one matrix product
    code = rotations @ np.array([span * span, span, 1])  # (S, 3)
    return (hkl @ code.T).max(axis=1)


def _half_sphere(lattice: np.ndarray, g_max: float) -> tuple[np.ndarray, np.ndarray]:
    """hkl with 0 < |g| ≤ g_max (Å⁻¹), one of each Friedel pair (first non-zero index positive)."""
    reciprocal = np.linalg.inv(lattice).T  # rows a*, b*, c* without 2π
    h_max, k_max, l_max = np.floor(np.linalg.norm(lattice, axis=1) * g_max).astype(int)
    k, l = (a.ravel() for a in np.meshgrid(np.arange(-k_max, k_max + 1), np.arange(-l_max, l_max + 1),
                                            indexing="ij"))
    plane = np.stack([np.zeros_like(k), k, l], axis=1)
    plane = plane[(k > 0) | ((k == 0) & (l > 0))]
    # planes of constant h in blocks, so memory stays bounded for big cells
    block = max(1, _CHUNK // len(k))
    parts = [plane] + [np.concatenate([np.stack([np.full_like(k, h), k, l], axis=1)
                                       for h in range(start, min(start + block, h_max + 1))])
                       for start in range(1, h_max + 1, block)]
    hkl_parts, g_parts = [], []
    for hkl in parts:
        g2 = np.einsum("ri,ri->r", *(2 * [hkl @ reciprocal]))
        inside = g2 <= g_max * g_max * (1 + 1e-12)
        hkl_parts.append(hkl[inside])
        g_parts.append(np.sqrt(g2[inside]))
    return np.concatenate(hkl_parts), np.concatenate(g_parts)


def _structure_factor_sq(hkl, d, frac, coeffs, occupancy, biso) -> np.ndarray:
    """NumPy face of structure_factor_sq_torch, in row chunks to bound memory."""
    atoms = [torch.from_numpy(np.ascontiguousarray(x, dtype=float)) for x in (frac, coeffs, occupancy, biso)]
    rows = max(1, _CHUNK // len(frac))
    with torch.no_grad():
        parts = [structure_factor_sq_torch(torch.from_numpy(hkl[i:i + rows]),
                                           torch.from_numpy(d[i:i + rows]), *atoms)
                 for i in range(0, len(d), rows)]
    return torch.cat(parts).numpy() if parts else np.zeros(0)


def _atoms(structure: Structure) -> tuple[list[str], np.ndarray, np.ndarray]:
    """One entry per (site, species): element symbol, fractional xyz, occupancy."""
    symbols, frac, occupancy = [], [], []
    for site in structure:
        for species, occ in site.species.items():
            symbols.append(getattr(species, "symbol", str(species)))
            frac.append(site.frac_coords)
            occupancy.append(occ)
    if not symbols:
        raise InputError(None, "structure has no atoms")
    return symbols, np.array(frac, dtype=float), np.array(occupancy, dtype=float)


def _biso_per_atom(symbols: list[str], biso: float | dict[str, float] | None) -> np.ndarray:
    if isinstance(biso, dict):
        values = np.array([float(biso.get(s, 0.0)) for s in symbols])
    else:
        values = np.full(len(symbols), float(biso or 0.0))
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise InputError(None, f"B_iso must be finite and ≥ 0 Å², got {biso!r}")
    return values


def weight_fractions(scales: Sequence[float], structures: Sequence[Structure]) -> np.ndarray:
    """Hill–Howard: each phase's mass fraction of the crystalline sample from its profile scale
    (intensity = scale · multiplicity · |F|² of its cell · profile), mass ∝ scale · (cell mass ZM) ·
    (cell volume V); the inverse of phase_scales."""
    masses = np.asarray(scales, dtype=float) * [s.composition.weight * s.volume for s in structures]
    return masses / masses.sum()


def phase_scales(fractions: Sequence[float], structures: Sequence[Structure]) -> np.ndarray:
    """The relative profile scales of phases at mass ``fractions`` (Hill–Howard, scale ∝ w / (ZM · V));
    the inverse of weight_fractions."""
    return np.asarray(fractions, dtype=float) / [s.composition.weight * s.volume for s in structures]
