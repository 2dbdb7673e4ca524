"""The vispy 3D view: geometry helpers without GL, rendered pixels with GL (Xvfb + Mesa)."""

import numpy as np
import pytest

from cmedgui.app.widgets.density_view import (
    ENCLOSED_VOLUME,
    DensityView,
    atoms_in_cells,
    cell_edges,
    isosurface_mesh,
    starting_level_fraction,
    tile,
)
from tests.app.conftest import blob

CELL = np.diag([6.0, 6.0, 6.0])


def test_isosurface_of_a_blob_is_a_closed_shell_in_the_cell():
    vertices, faces = isosurface_mesh(blob(), CELL, level=5.0)
    assert len(faces) > 100
    radius = np.linalg.norm(vertices - 3.0, axis=1)
    # ρ = 10 exp(-r²/(0.02·a²)) = 5  →  r = a·sqrt(0.02 ln 2)
    assert np.allclose(radius, 6.0 * np.sqrt(0.02 * np.log(2)), atol=0.1)
    assert isosurface_mesh(blob(), CELL, level=50.0)[1].shape == (0, 3)


def test_tiling_cells_and_atoms():
    assert tile(np.zeros((8, 8, 8)), 2).shape == (17, 17, 17)
    assert cell_edges(CELL, 2).shape == (2 * 12 * 8, 3)
    positions, source = atoms_in_cells(np.array([[0, 0, 0], [0.5, 0.5, 0.5]]), 1)
    assert len(positions) == 9 and list(source).count(1) == 1  # the corner atom has 8 images


@pytest.fixture
def view(qtbot, gl):
    widget = DensityView()
    widget.resize(400, 360)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def blue_fraction(image):
    rgb = image[..., :3].astype(int)
    return np.mean((rgb[..., 2] > rgb[..., 0] + 40) & (rgb[..., 2] > 100))


def test_isosurface_pixels_are_where_the_density_is(view):
    view.show_atoms.setChecked(False)
    view.set_density(blob(), CELL)
    view.set_level_fraction(0.5)
    image = view.render()
    h, w = image.shape[:2]
    centre = image[h // 2 - 10:h // 2 + 10, w // 2 - 10:w // 2 + 10]
    corner = image[:20, :20]
    assert blue_fraction(centre) > 0.9  # the surface faces the camera at the centre
    assert np.all(corner[..., :3] == 255)  # white background far from the cell
    small = blue_fraction(image)
    view.set_level_fraction(0.1)  # a lower level encloses more: a bigger surface
    assert blue_fraction(view.render()) > small * 1.5


def test_atoms_slice_and_cells_draw(view):
    view.set_density(blob(), CELL)
    view.set_atoms(["Na", "Cl"], np.array([[0, 0, 0], [0.5, 0.5, 0.5]]), CELL)
    view.cells.setValue(2)
    assert view.atoms.visible and view.mesh.visible
    view.slice_axis.setCurrentIndex(3)
    assert view.slice.visible
    image = view.render()
    assert len(np.unique(image[..., :3].reshape(-1, 3), axis=0)) > 50  # a coloured map, not blank
    view.set_density(None, None)
    assert not view.mesh.visible and view.level_label.text() == "no density"


def test_starting_level_encloses_a_fixed_share_of_the_cell():
    rng = np.random.default_rng(3)
    for values in (blob(), 1.0 + 0.01 * rng.random((16, 16, 16))):  # sharp, and nearly flat
        fraction = starting_level_fraction(values)
        level = values.min() + fraction * (values.max() - values.min())
        assert np.mean(values > level) == pytest.approx(ENCLOSED_VOLUME, abs=0.01)
