"""What the slice view draws for a map and a plane (no Qt): contours, atoms in the plane, caption;
shared by the window's slice and the report's slice figure."""

from __future__ import annotations

import numpy as np

from cmedgui.app.models.map_model import MAP_CHOICES, SIGNED_KINDS
from model.slices import (
    atoms_on_plane,
    contour_levels,
    contour_lines,
    plane_slice,
)

SLICE_STEPS = 64  # samples per cell edge on the slice


def slice_drawing(density, hkl, offset: float) -> tuple[list, np.ndarray, bool, list, str]:
    """SliceView.show_slice's arguments for ``density`` (model.density.Density) on (hkl) at ``offset``."""
    from model.fourier import map_sigma  # torch: load on first use, not with the window

    signed = density.kind in SIGNED_KINDS
    piece = plane_slice(density.values, density.lattice, hkl, offset, samples_per_cell=max(SLICE_STEPS, density.n))
    sigma = map_sigma(density)
    levels = contour_levels(piece.values, sigma, signed)
    atoms = []
    if density.structure is not None:
        where, source = atoms_on_plane(piece, density.structure.frac_coords)
        atoms = [(x, y, density.structure[int(i)].specie.symbol) for (x, y), i in zip(where, source)]
    h, k, l = hkl
    u, v = (" ".join(str(int(c)) for c in vec) for vec in (piece.u, piece.v))
    spacing = (f"±1σ steps (σ {sigma:.3g} e/Å³), green +, red −" if signed else
               f"{len(levels)} levels doubling up to {max(levels, default=0):.3g} e/Å³")
    caption = (f"({h} {k} {l}) at height {offset:.3f}: {MAP_CHOICES[density.kind]}; "
               f"u = [{u}], v = [{v}]; contours {spacing}")
    return contour_lines(piece, levels), piece.frame, signed, atoms, caption
