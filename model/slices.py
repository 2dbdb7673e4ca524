"""A density map cut by a lattice plane, as VESTA and GSAS-II draw it: the values on the plane,
their contour lines and the atoms lying in it (the map's σ and extrema: model.fourier).

A plane is given by Miller indices (hkl) and an offset: the fractional points x with
h·x = offset (offset 0 goes through the origin; (001) with offset t is the plane z = t). The
drawn area is one mesh of the plane's own 2D lattice, spanned by the two shortest lattice vectors
u, v in it (e.g. (110) of a cubic cell: u = [1 −1 0], v = [0 0 1]). The grid is sampled with
periodic wrap-around (``scipy.ndimage.map_coordinates``, mode "grid-wrap"), so a plane through
grid points returns the grid's own values there.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import map_coordinates
from skimage.measure import find_contours

SEARCH = 3  # in-plane lattice vectors are looked for with components in −SEARCH…SEARCH
AXES = {(1, 0, 0): ((0, 1, 0), (0, 0, 1)), (0, 1, 0): ((1, 0, 0), (0, 0, 1)),
        (0, 0, 1): ((1, 0, 0), (0, 1, 0))}


@dataclass(frozen=True)
class Slice:
    """Map values on a plane: ``values[i, j]`` at fractional ``origin + i/(nu−1)·u + j/(nv−1)·v``.

    ``u``, ``v`` are integer lattice vectors (fractional) spanning the drawn mesh, ``lattice``
    rows a, b, c in Å.
    """

    values: np.ndarray
    origin: np.ndarray
    u: np.ndarray
    v: np.ndarray
    lattice: np.ndarray
    hkl: tuple[int, int, int]
    offset: float

    @property
    def frame(self) -> np.ndarray:
        """(2, 2) rows: u and v in the plane's own 2D Cartesian frame (Å), u along x."""
        cu, cv = self.u @ self.lattice, self.v @ self.lattice
        length_u, length_v = float(np.linalg.norm(cu)), float(np.linalg.norm(cv))
        cos = float(np.dot(cu, cv)) / (length_u * length_v)
        sin = math.sqrt(max(1.0 - cos * cos, 0.0))
        return np.array([[length_u, 0.0], [length_v * cos, length_v * sin]])

    def to_plane(self, index_ij: np.ndarray) -> np.ndarray:
        """Points (…, 2) in sample index units (i, j) → the plane's 2D frame in Å."""
        steps = np.array([self.values.shape[0] - 1, self.values.shape[1] - 1], dtype=float)
        return (np.asarray(index_ij, dtype=float) / steps) @ self.frame


def in_plane_vectors(hkl) -> tuple[np.ndarray, np.ndarray]:
    """Two integer lattice vectors spanning the 2D lattice of the plane (hkl) through the origin."""
    hkl = np.asarray(hkl, dtype=int)
    if not hkl.any():
        raise ValueError("a plane needs Miller indices other than (0 0 0)")
    reduced = hkl // math.gcd(*map(int, hkl))
    if tuple(abs(reduced)) in AXES and np.count_nonzero(reduced) == 1:
        u, v = AXES[tuple(abs(reduced))]
        return np.array(u), np.array(v)
    candidates = [np.array(c) for c in itertools.product(range(-SEARCH, SEARCH + 1), repeat=3)
                  if any(c) and np.dot(c, reduced) == 0 and math.gcd(*c) == 1]
    candidates.sort(key=lambda c: (int(np.abs(c).sum()), tuple(-c)))
    u = candidates[0]
    # a primitive pair: u × v is ±(hkl) reduced, so the mesh holds one lattice point of the plane
    v = next(c for c in candidates if np.array_equal(np.abs(np.cross(u, c)), np.abs(reduced)))
    return u, v


def plane_slice(values: np.ndarray, lattice: np.ndarray, hkl=(0, 0, 1), offset: float = 0.0,
                samples_per_cell: int | None = None, order: int = 3) -> Slice:
    """The map on the plane h·x = ``offset`` over one mesh u × v of the plane (edges included).

    ``samples_per_cell`` is the number of steps per cell edge (default the grid's N), so a step
    along u = [1 −1 0] still lands on grid points.
    """
    values = np.asarray(values, dtype=float)
    n = values.shape[0]
    steps = samples_per_cell or n
    u, v = in_plane_vectors(hkl)
    h = np.asarray(hkl, dtype=float)
    origin = offset * h / float(h @ h)
    nu, nv = steps * int(np.abs(u).max()) + 1, steps * int(np.abs(v).max()) + 1
    s = np.linspace(0.0, 1.0, nu)[:, None, None]
    t = np.linspace(0.0, 1.0, nv)[None, :, None]
    frac = origin + s * u + t * v  # (nu, nv, 3)
    coords = np.moveaxis(frac * np.array(values.shape), -1, 0)
    sampled = map_coordinates(values, coords, order=order, mode="grid-wrap")
    return Slice(sampled, origin, u.astype(float), v.astype(float), np.asarray(lattice, dtype=float),
                 tuple(int(x) for x in hkl), float(offset))


def contour_levels(values: np.ndarray, sigma: float, signed: bool, count: int = 8) -> list[float]:
    """Contour levels: ±1σ, ±2σ, … for a signed (difference) map, up to its largest |value|; for a
    density ``count`` levels each twice the one before, up to half the maximum (an even spacing
    would show a heavy atom's core and hide an O beside it)."""
    top = float(np.max(np.abs(values))) if signed else float(np.max(values))
    if top <= 0:
        return []
    if signed and sigma > 0:
        multiples = np.arange(1, min(int(top / sigma), 4 * count) + 1)
        return sorted([*(-multiples * sigma), *(multiples * sigma)])
    return [top * 0.5**k for k in range(count, 0, -1)]


def contour_lines(piece: Slice, levels) -> list[tuple[float, np.ndarray]]:
    """(level, (M, 2) polyline in the plane's frame, Å) for every contour of every level."""
    return [(float(level), piece.to_plane(line)) for level in levels
            for line in find_contours(piece.values, level)]


def atoms_on_plane(piece: Slice, frac: np.ndarray, within_A: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Atoms (and their lattice images) within ``within_A`` Å of the plane and inside the drawn
    mesh: their 2D positions in the plane's frame (Å) and the indices of the source atoms."""
    frac = np.asarray(frac, dtype=float).reshape(-1, 3)
    corners = np.array([piece.origin + a * piece.u + b * piece.v for a in (0, 1) for b in (0, 1)])
    low, high = np.floor(corners.min(axis=0)) - 1, np.ceil(corners.max(axis=0)) + 1
    shifts = np.array(list(itertools.product(*(range(int(lo), int(hi)) for lo, hi in zip(low, high)))))
    images = np.mod(frac, 1.0)[:, None, :] + shifts[None, :, :]  # (atoms, shifts, 3)
    source = np.broadcast_to(np.arange(len(frac))[:, None], images.shape[:2])
    basis = np.stack([piece.u, piece.v, np.cross(piece.u @ piece.lattice, piece.v @ piece.lattice)
                      @ np.linalg.inv(piece.lattice)])  # frac rows of u, v and the plane normal
    coords = (images - piece.origin) @ np.linalg.inv(basis)  # (s, t, n) in that basis
    normal_A = np.linalg.norm(basis[2] @ piece.lattice)
    tol = 1e-6
    keep = ((np.abs(coords[..., 2]) * normal_A <= within_A) & (coords[..., 0] >= -tol)
            & (coords[..., 0] <= 1 + tol) & (coords[..., 1] >= -tol) & (coords[..., 1] <= 1 + tol))
    return coords[keep][:, :2] @ piece.frame, source[keep]
