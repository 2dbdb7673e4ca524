"""The maps of the solution on screen: the selector, the level unit, the 3D view and the slice.

SolveModel.density is the map shown; MapModel holds every map the solution has (its density and
its Fourier maps) and which one is chosen. Choosing one shows it; a map shown from elsewhere (a
solution, a session, one calculated from the atoms) joins the list.
"""

from __future__ import annotations

import numpy as np

from cmedgui.app.models import MapModel, SolveModel
from cmedgui.app.models.map_model import MAP_CHOICES, SIGNED_KINDS
from cmedgui.app.slicing import slice_drawing
from cmedgui.app.widgets.main_window import MainWindow

DISPLAY_GRID = 64  # the 3D view shows densities Fourier-upsampled to at least this many points per axis


def site_labels(structure, result) -> list[str]:
    """Labels for hover: "Ce1 4a" from the solution's orbits where they match the structure's
    atoms, else the element numbered in order."""
    atoms = result.atoms if result is not None else []
    if len(atoms) == len(structure) and all(a.element == s.specie.symbol for a, s in zip(atoms, structure)):
        numbers: dict[object, str] = {}
        per_element: dict[str, int] = {}
        labels = []
        for index, atom in enumerate(atoms):
            key = ("atom", index) if atom.orbit is None else atom.orbit
            if key not in numbers:
                per_element[atom.element] = per_element.get(atom.element, 0) + 1
                numbers[key] = f"{atom.element}{per_element[atom.element]}"
            labels.append(f"{numbers[key]} {atom.wyckoff}".strip())
        return labels
    return [f"{site.specie.symbol}{i + 1}" for i, site in enumerate(structure)]


class MapController:
    def __init__(self, maps: MapModel, solve: SolveModel, window: MainWindow):
        self.maps, self.solve, self.window = maps, solve, window
        view, slices = window.density_view, window.slice_view
        wiring = (  # user intents → the model; the models' changes → the views
            (view.map_chosen, maps.set_kind), (view.level_unit_chosen, maps.set_level),
            (slices.plane_chosen, maps.set_plane), (maps.maps_changed, self._list_maps),
            (maps.kind_changed, self._show_kind), (maps.kind_changed, self._list_maps),
            (maps.level_changed, lambda: view.show_level_unit(maps.level_unit, maps.sigmas)),
            (maps.plane_changed, self._draw_slice), (solve.current_changed, self._collect),
            (solve.structure_changed, self._structure_changed), (solve.density_changed, self._density_changed))
        for signal, slot in wiring:
            signal.connect(slot)
        slices.show_plane(maps.hkl, maps.offset)
        self._list_maps()

    # -- model → model ---------------------------------------------------------------------------
    def _collect(self, _index: int = -1) -> None:
        """The shown solution's maps: its density and its Fourier maps."""
        result, shown = self.solve.result, self.solve.density
        found = {} if result is None else {d.kind: d for d in (result.density, *result.maps.values()) if d is not None}
        if shown is not None:
            found.setdefault(shown.kind, shown)
        self.maps.set_maps(found, self.solve.structure is not None or result is not None,
                           shown.kind if shown is not None else "")

    def _structure_changed(self) -> None:
        if self.solve.result is None:  # an opened CIF: only what its atoms give
            self._collect()
        self._atoms_to_view()

    def _density_changed(self) -> None:
        density = self.solve.density
        if density is not None and self.maps.maps.get(density.kind) is not density:
            self.maps.add_map(density)
        elif density is not None and self.maps.kind != density.kind:
            self.maps.set_kind(density.kind)
        self._draw_density()
        self._draw_slice()

    def _show_kind(self, kind: str) -> None:
        density = self.maps.maps.get(kind)
        if density is None and kind == "calculated" and self.solve.structure is not None:
            from model.density import cmed  # torch and pymatgen: load on first use

            density = cmed(self.solve.structure, conventional=self.solve.result is None)
        if density is not None and density is not self.solve.density:
            self.solve.set_density(density)

    # -- model → views ---------------------------------------------------------------------------
    def _list_maps(self) -> None:
        self.window.density_view.set_map_choices([(k, MAP_CHOICES[k]) for k in self.maps.choices], self.maps.kind)
        # before a solve or an opened structure there is nothing to draw: no empty 3D pane or axes
        self.window.maps_splitter.setVisible(bool(self.maps.choices))

    def _atoms_to_view(self) -> None:
        structure = self.solve.structure
        view = self.window.density_view
        if structure is None:
            view.set_atoms([], np.zeros((0, 3)))
            return
        view.set_atoms([site.specie.symbol for site in structure], structure.frac_coords,
                       structure.lattice.matrix, site_labels(structure, self.solve.result))

    def _draw_density(self) -> None:
        density = self.solve.density
        view = self.window.density_view
        if density is None:
            view.set_density(None, None)
            return
        signed = density.kind in SIGNED_KINDS
        view.show_level_unit(self.maps.level_unit if signed else "e/Å³", self.maps.sigmas)
        if density.n < DISPLAY_GRID:
            from model.density import fourier_upsample

            density = fourier_upsample(density, DISPLAY_GRID)
        view.set_density(density.values, density.lattice, signed=signed)

    def _draw_slice(self) -> None:
        density, slices = self.solve.density, self.window.slice_view
        slices.show_plane(self.maps.hkl, self.maps.offset)
        if density is None:
            slices.show_slice([], None, False, [], "no map to slice")
            return
        slices.show_slice(*slice_drawing(density, self.maps.hkl, self.maps.offset))
