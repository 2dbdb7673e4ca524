"""The 3D view (vispy SceneCanvas in the Qt window): the chosen map as an isosurface (a difference
map as two, + green and − red) with a level slider in e/Å³ or σ, unit-cell box and axes, atoms as
spheres in element colours, labelled on hover, 1–3 cells per axis, and a slice plane drawn as a 2D
colour map."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import vispy

vispy.use("pyside6")
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolTip,
    QVBoxLayout,
    QWidget,
)
from skimage.measure import marching_cubes
from vispy import scene
from vispy.visuals.transforms import MatrixTransform

ISO_COLOUR = (0.25, 0.55, 0.95, 0.85)
PLUS_COLOUR = (0.1, 0.7, 0.2, 0.8)  # a difference map's + surface (VESTA, Olex2, Coot: green)
MINUS_COLOUR = (0.85, 0.1, 0.1, 0.8)  # and its − surface: red
HOVER_PX = 14  # an atom is hovered when its centre is this close to the cursor (pixels)
AXIS_COLOURS = ((0.85, 0.1, 0.1, 1), (0.1, 0.6, 0.1, 1), (0.1, 0.2, 0.9, 1))
BOX_EDGES = [(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 3), (2, 6), (3, 7), (4, 5), (4, 6), (5, 7), (6, 7)]


@functools.cache
def element_colours() -> dict[str, tuple[float, float, float]]:
    """Jmol element colours (RGB 0–1), from the table pymatgen ships."""
    import pymatgen.vis
    from monty.serialization import loadfn

    table = loadfn(Path(pymatgen.vis.__file__).parent / "ElementColorSchemes.yaml")["Jmol"]
    return {symbol: tuple(c / 255 for c in rgb) for symbol, rgb in table.items()}


def tile(values: np.ndarray, cells: int) -> np.ndarray:
    """The grid repeated ``cells`` times per axis plus the closing plane, so that grid index
    i sits at fractional coordinate i/N from 0 to ``cells`` inclusive."""
    tiled = np.tile(values, (cells, cells, cells))
    return np.pad(tiled, ((0, 1), (0, 1), (0, 1)), mode="wrap")


ENCLOSED_VOLUME = 0.04  # of the cell inside the first isosurface shown


def starting_level_fraction(values: np.ndarray, enclosed: float = ENCLOSED_VOLUME) -> float:
    """The level, as a fraction of the value range, whose surface encloses ``enclosed`` of the cell.

    A fixed fraction of the range shows a sharp density as points and a flat one (a network that is
    unsure) as nothing; a fixed enclosed volume shows the densest regions of either.
    """
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return 0.5
    return (float(np.quantile(values, 1.0 - enclosed)) - low) / (high - low)


def isosurface_mesh(values: np.ndarray, lattice: np.ndarray, level: float, cells: int = 1):
    """Vertices (Cartesian Å) and faces of the ``level`` (e/Å³) surface over ``cells``³ cells;
    empty arrays when the level lies outside the values."""
    grid = tile(np.asarray(values, dtype=np.float32), cells)
    if not grid.min() < level < grid.max():
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint32)
    n = np.array(values.shape, dtype=float)
    vertices, faces, _, _ = marching_cubes(grid, level)
    to_cart = np.asarray(lattice, dtype=float) / n[:, None]  # index units → fractional → Cartesian
    return (vertices @ to_cart).astype(np.float32), faces.astype(np.uint32)


def cell_edges(lattice: np.ndarray, cells: int) -> np.ndarray:
    """Segment end points (2·12·cells³, 3) of every cell's box, Cartesian Å."""
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=float)
    segments = []
    for offset in np.ndindex(cells, cells, cells):
        frac = corners + offset
        for start, end in BOX_EDGES:
            segments += [frac[start], frac[end]]
    return np.array(segments) @ np.asarray(lattice, dtype=float)


def atoms_in_cells(frac: np.ndarray, cells: int, tol: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Fractional positions of atoms in ``cells``³ cells, with the images on the far faces;
    returns (positions, index of the source atom)."""
    frac = np.mod(np.asarray(frac, dtype=float), 1.0)
    shifts = np.array(list(np.ndindex(cells + 1, cells + 1, cells + 1)), dtype=float)
    positions = frac[:, None, :] + shifts[None, :, :]
    inside = np.all(positions <= cells + tol, axis=2)
    source = np.broadcast_to(np.arange(len(frac))[:, None], inside.shape)
    return positions[inside], source[inside]


def nearest_point(points: np.ndarray, cursor, radius: float) -> int | None:
    """Index of the point (N, 2) nearest ``cursor`` within ``radius``, or None."""
    if len(points) == 0:
        return None
    distances = np.linalg.norm(np.asarray(points, dtype=float) - np.asarray(cursor, dtype=float), axis=1)
    best = int(np.argmin(distances))
    return best if distances[best] <= radius else None


def atom_text(symbol: str, label: str, frac) -> str:
    """What hovering an atom says: element, label and fractional x y z (in the first cell)."""
    x, y, z = np.mod(np.asarray(frac, dtype=float), 1.0) + 0.0
    return f"{symbol} {label}  ({x:.4f}, {y:.4f}, {z:.4f})"


def legend_html(level: float | None, signed: bool, low: float, high: float) -> str:
    """The colour/level key beside the view: which colour is which level, and the map's range."""
    if level is None:
        return ""
    def swatch(rgba):
        red, green, blue = (round(255 * c) for c in rgba[:3])
        return f"<span style='color:#{red:02x}{green:02x}{blue:02x}'>■</span>"

    span = f"<br>map {low:.3g} … {high:.3g} e/Å³"
    if signed:
        return f"{swatch(PLUS_COLOUR)} +{level:.3g}  {swatch(MINUS_COLOUR)} −{level:.3g} e/Å³{span}"
    return f"{swatch(ISO_COLOUR)} ρ = {level:.3g} e/Å³{span}"


class DensityView(QWidget):
    """Draws a map and atoms; its controls change only the drawing, except the map selector and the
    level unit, which it reports (``map_chosen``, ``level_unit_chosen``) for a model to hold."""

    SLIDER_STEPS = 1000
    map_chosen = Signal(str)
    level_unit_chosen = Signal(str, float)  # "e/Å³" or "σ", and the level in σ

    def __init__(self, parent=None):
        super().__init__(parent)
        self.canvas = scene.SceneCanvas(keys=None, bgcolor="white", size=(500, 400))
        self.view = self.canvas.central_widget.add_view()
        self.view.camera = scene.TurntableCamera(fov=30, elevation=20, azimuth=-60)
        self.mesh = scene.visuals.Mesh(color=ISO_COLOUR, shading="smooth", parent=self.view.scene)
        self.mesh_minus = scene.visuals.Mesh(color=MINUS_COLOUR, shading="smooth", parent=self.view.scene)
        self.mesh_minus.visible = False
        self.box = scene.visuals.Line(connect="segments", color=(0.3, 0.3, 0.3, 1), width=1.5,
                                      parent=self.view.scene)
        self.axes = scene.visuals.Line(connect="segments", width=3, parent=self.view.scene)
        self.axis_labels = scene.visuals.Text(font_size=12, bold=True, parent=self.view.scene)
        self.atoms = scene.visuals.Markers(scaling="scene", spherical=True, parent=self.view.scene)
        self.atom_labels = scene.visuals.Text(font_size=9, color="black", parent=self.view.scene)
        self.slice = scene.visuals.Image(cmap="viridis", parent=self.view.scene)
        self.slice.transform = MatrixTransform()
        self.slice.visible = False
        self._values: np.ndarray | None = None
        self._signed = False
        self.sigma = 0.0
        self._lattice = np.eye(3)
        self._atoms: tuple[list[str], np.ndarray, list[str]] = ([], np.zeros((0, 3)), [])
        self._drawn = (np.zeros((0, 3)), np.zeros(0, dtype=int))  # atoms drawn: Cartesian Å, source
        self.level = 0.0
        self.canvas.events.mouse_move.connect(lambda event: self.hover_at(event.pos, tooltip=True))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas.native, 1)
        self._build_controls(layout)

    def _build_controls(self, layout: QVBoxLayout) -> None:
        self.map_selector = QComboBox()
        self.map_selector.setToolTip("Which map the view and the slice show")
        self.map_selector.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.map_selector.setMinimumContentsLength(16)
        self.map_selector.activated.connect(lambda i: self.map_chosen.emit(self.map_selector.itemData(i)))
        self.level_slider = QSlider(Qt.Orientation.Horizontal)
        self.level_slider.setRange(1, self.SLIDER_STEPS - 1)
        self.level_slider.setValue(self.SLIDER_STEPS // 12)
        self.level_slider.setMinimumWidth(100)
        self.level_slider.setToolTip("Isosurface level (e/Å³); a difference map is drawn at ± the level")
        self.level_slider.valueChanged.connect(self._draw_surface)
        self.level_label = QLabel("no density")
        self.level_label.setMinimumWidth(150)
        self.sigma_label = QLabel("σ —")
        self.sigma_label.setToolTip("σ of the map: the RMS deviation of its values from their mean")
        self.level_unit = QComboBox()
        self.level_unit.addItems(["e/Å³", "σ"])
        self.level_unit.setToolTip("Set the level with the slider (e/Å³) or as a multiple of σ")
        self.sigmas = QDoubleSpinBox()
        self.sigmas.setRange(0.1, 50.0)
        self.sigmas.setSingleStep(0.5)
        self.sigmas.setValue(3.0)
        self.sigmas.setSuffix(" σ")
        for signal in (self.level_unit.activated, self.sigmas.valueChanged):
            signal.connect(lambda *_: self.level_unit_chosen.emit(self.level_unit.currentText(),
                                                                  self.sigmas.value()))
        self.legend = QLabel()
        self.legend.setToolTip("Colour key of the surfaces, and the range of the map")
        self.hover = QLabel("hover an atom for its label")
        self.cells = QSpinBox()
        self.cells.setRange(1, 3)
        self.cells.setPrefix("cells ")
        self.cells.valueChanged.connect(self.redraw)
        self.show_atoms = QCheckBox("atoms")
        self.show_atoms.setChecked(True)
        self.show_atoms.toggled.connect(self._draw_atoms)
        self.slice_axis = QComboBox()
        self.slice_axis.addItems(["no slice", "slice ⟂ a", "slice ⟂ b", "slice ⟂ c"])
        self.slice_axis.setToolTip("A plane of the density as a colour map (viridis of √ρ)")
        self.slice_axis.currentIndexChanged.connect(self._draw_slice)
        self.slice_position = QSlider(Qt.Orientation.Horizontal)
        self.slice_position.setRange(0, 100)
        self.slice_position.setValue(50)
        self.slice_position.setToolTip("Slice position along its axis (fraction of the cell)")
        self.slice_position.valueChanged.connect(self._draw_slice)
        reset = QPushButton("Reset view")
        reset.clicked.connect(self.reset_view)
        rows = (("Map", self.map_selector, "Level", (self.level_slider, 2), self.level_label, self.sigma_label,
                 self.level_unit, self.sigmas),
                (self.legend, (self.hover, 1), self.cells, self.show_atoms, self.slice_axis,
                 (self.slice_position, 1), reset))
        for row in rows:
            line = QHBoxLayout()
            for item in row:
                widget, stretch = item if isinstance(item, tuple) else (item, 0)
                line.addWidget(QLabel(widget) if isinstance(widget, str) else widget, stretch)
            layout.addLayout(line)

    # -- what the controller hands over -------------------------------------------------------
    def set_map_choices(self, choices: list[tuple[str, str]], current: str) -> None:
        """The selector's entries as (kind, words), and the one shown."""
        self.map_selector.clear()
        for kind, words in choices:
            self.map_selector.addItem(words, kind)
        self.map_selector.setCurrentIndex(max(self.map_selector.findData(current), 0))
        self.map_selector.setEnabled(len(choices) > 1)

    def show_level_unit(self, unit: str, sigmas: float) -> None:
        """Level by the slider (e/Å³) or at ``sigmas`` σ of the map."""
        for widget in (self.level_unit, self.sigmas):
            widget.blockSignals(True)
        self.level_unit.setCurrentText(unit)
        self.sigmas.setValue(sigmas)
        for widget in (self.level_unit, self.sigmas):
            widget.blockSignals(False)
        self._draw_surface()

    def set_density(self, values: np.ndarray | None, lattice: np.ndarray | None, signed: bool = False) -> None:
        """A map grid (N,N,N) in e/Å³ on the cell with rows a, b, c (Å); None clears the view.
        A ``signed`` map (a difference map) is drawn as two surfaces, at + and − the level."""
        self._values = None if values is None else np.asarray(values, dtype=np.float32)
        self._signed = bool(signed)
        if lattice is not None:
            self._lattice = np.asarray(lattice, dtype=float)
        if self._values is not None:
            self.sigma = float(np.sqrt(np.mean((self._values - self._values.mean(dtype=np.float64)) ** 2)))
            _, high = self._range()
            start = starting_level_fraction(self._values) if not signed else 3 * self.sigma / max(high, 1e-12)
            self.level_slider.blockSignals(True)  # redraw() below draws the surface once
            self.set_level_fraction(start)
            self.level_slider.blockSignals(False)
        self.redraw()
        self.reset_view()

    def set_atoms(self, symbols: list[str], frac: np.ndarray, lattice: np.ndarray | None = None,
                  labels: list[str] | None = None) -> None:
        """Atoms by element symbol and fractional position; ``labels`` (e.g. "Ce1") name them on hover."""
        symbols = list(symbols)
        self._atoms = (symbols, np.asarray(frac, dtype=float).reshape(-1, 3),
                       list(labels) if labels is not None else [f"{s}{i + 1}" for i, s in enumerate(symbols)])
        if lattice is not None:
            self._lattice = np.asarray(lattice, dtype=float)
        self.redraw()

    def set_level_fraction(self, fraction: float) -> None:
        """Move the level slider to ``fraction`` of the density range (0–1)."""
        self.level_slider.setValue(round(np.clip(fraction, 0, 1) * self.SLIDER_STEPS))

    def _range(self) -> tuple[float, float]:
        """The slider's span: min … max of the map, or 0 … max |value| of a signed map."""
        if self._signed:
            return 0.0, float(np.abs(self._values).max())
        return float(self._values.min()), float(self._values.max())

    # -- drawing ------------------------------------------------------------------------------
    def redraw(self) -> None:
        cells = self.cells.value()
        edges = cell_edges(self._lattice, cells)
        self.box.set_data(pos=edges)
        origin = np.zeros(3)
        ends = self._lattice * 0.25 + origin  # short axes so they do not hide the first cell's box
        self.axes.set_data(pos=np.array([[origin, end] for end in ends]).reshape(-1, 3),
                           color=np.repeat(np.array(AXIS_COLOURS), 2, axis=0))
        self.axis_labels.text = ["a", "b", "c"]
        self.axis_labels.pos = ends * 1.15
        self.axis_labels.color = np.array(AXIS_COLOURS)
        self._draw_surface()
        self._draw_atoms()
        self._draw_slice()

    def _draw_surface(self) -> None:
        if self._values is None:
            self.mesh.visible = self.mesh_minus.visible = False
            self.level_label.setText("no density")
            self.sigma_label.setText("σ —")
            self.legend.setText("")
            return
        low, high = self._range()
        in_sigma = self.level_unit.currentText() == "σ" and self.sigma > 0
        self.level_slider.setEnabled(not in_sigma)
        self.sigmas.setEnabled(in_sigma)
        if in_sigma:
            self.level = self.sigmas.value() * self.sigma
            self.level_slider.blockSignals(True)
            self.set_level_fraction((self.level - low) / max(high - low, 1e-12))
            self.level_slider.blockSignals(False)
        else:
            self.level = low + (high - low) * self.level_slider.value() / self.SLIDER_STEPS
        ratio = f" = {self.level / self.sigma:.2f}σ" if self.sigma > 0 else ""
        self.level_label.setText(f"{'±' if self._signed else ''}{self.level:.3g} e/Å³{ratio}")
        self.sigma_label.setText(f"σ {self.sigma:.3g} e/Å³")
        self.legend.setText(legend_html(self.level, self._signed, float(self._values.min()),
                                        float(self._values.max())))
        surfaces = [(self.mesh, self.level, PLUS_COLOUR if self._signed else ISO_COLOUR)]
        surfaces.append((self.mesh_minus, -self.level, MINUS_COLOUR) if self._signed else (self.mesh_minus, None, None))
        for mesh, level, colour in surfaces:
            faces = np.zeros((0, 3))
            if level is not None:
                vertices, faces = isosurface_mesh(self._values, self._lattice, level, self.cells.value())
            mesh.visible = len(faces) > 0  # vispy cannot take an empty mesh
            if len(faces):
                mesh.set_data(vertices=vertices, faces=faces, color=colour)
        self.canvas.update()

    def _draw_atoms(self) -> None:
        symbols, frac, _ = self._atoms
        if not self.show_atoms.isChecked() or not symbols:
            self.atoms.visible = self.atom_labels.visible = False
            self._drawn = (np.zeros((0, 3)), np.zeros(0, dtype=int))
            return
        positions, source = atoms_in_cells(frac, self.cells.value())
        colours = element_colours()
        face = np.array([(*colours.get(symbols[i], (0.8, 0.2, 0.8)), 1.0) for i in source])
        cart = positions @ self._lattice
        self._drawn = (cart, source)
        size = 0.07 * float(np.cbrt(abs(np.linalg.det(self._lattice))))  # scene units (Å)
        self.atoms.set_data(cart, size=size, face_color=face, edge_width=0)
        self.atoms.visible = self.atom_labels.visible = True
        first = np.all(positions < 1.0 - 1e-3, axis=1)  # label each atom once, in the first cell
        self.atom_labels.text = [symbols[i] for i in source[first]] or [""]
        self.atom_labels.pos = cart[first] + size * 0.6 if first.any() else np.zeros((1, 3))

    def atom_screen_positions(self) -> np.ndarray:
        """The drawn atoms' centres in canvas pixels (N, 2), as the camera shows them now."""
        cart, _ = self._drawn
        if len(cart) == 0:
            return np.zeros((0, 2))
        mapped = self.atoms.get_transform("visual", "canvas").map(cart)
        return mapped[:, :2] / mapped[:, 3:4]

    def hover_at(self, pos, tooltip: bool = False) -> str:
        """Label the atom under canvas pixel ``pos`` (element, label, x y z); "" when none is near."""
        index = nearest_point(self.atom_screen_positions(), pos, HOVER_PX) if self.atoms.visible else None
        text = ""
        if index is not None:
            symbols, frac, labels = self._atoms
            atom = int(self._drawn[1][index])
            text = atom_text(symbols[atom], labels[atom], frac[atom])
        self.hover.setText(text or "hover an atom for its label")
        if tooltip:
            QToolTip.showText(QCursor.pos(), text, self.canvas.native) if text else QToolTip.hideText()
        return text

    def _draw_slice(self) -> None:
        axis = self.slice_axis.currentIndex() - 1
        if axis < 0 or self._values is None:
            self.slice.visible = False
            self.canvas.update()
            return
        cells = self.cells.value()
        n = self._values.shape[axis]
        t = self.slice_position.value() / 100.0
        plane = np.take(self._values, round(t * n) % n, axis=axis)
        # √ρ: outside the atoms' cores (hidden by the isosurface) a linear scale would be all dark.
        plane = np.sqrt(np.maximum(np.tile(plane, (cells, cells)), 0.0))
        u, v = [i for i in range(3) if i != axis]
        # Image pixel (x, y) is data[y, x] covering [x, x+1]; its centre is grid point x along u.
        nu, nv = self._values.shape[u], self._values.shape[v]
        matrix = np.eye(4)
        matrix[0, :3] = self._lattice[u] / nu
        matrix[1, :3] = self._lattice[v] / nv
        normal = np.cross(self._lattice[u], self._lattice[v])
        matrix[2, :3] = normal / np.linalg.norm(normal)  # image z is 0; a unit normal keeps it invertible
        matrix[3, :3] = -0.5 * self._lattice[u] / nu - 0.5 * self._lattice[v] / nv + t * self._lattice[axis]
        self.slice.set_data(np.ascontiguousarray(plane.T))
        self.slice.clim = (0.0, float(np.sqrt(max(self._values.max(), 1e-12))))
        self.slice.transform.matrix = matrix
        self.slice.visible = True
        self.canvas.update()

    def reset_view(self) -> None:
        cells = self.cells.value()
        centre = 0.5 * cells * self._lattice.sum(axis=0)
        self.view.camera.center = tuple(centre)
        self.view.camera.elevation, self.view.camera.azimuth = 20.0, -60.0
        self.view.camera.scale_factor = 1.2 * cells * float(np.linalg.norm(self._lattice.sum(axis=0)))
        self.canvas.update()

    def render(self) -> np.ndarray:
        """The 3D view as an RGBA uint8 image (H, W, 4), drawn off screen."""
        return self.canvas.render(alpha=True)
