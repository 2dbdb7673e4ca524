"""The maps in the window: selector, σ levels, ± difference surfaces, hover labels, the slice's
contours, and the verdict with the difference map's peak and hole and the atoms at bounds."""

from dataclasses import replace

import numpy as np
import pytest

from model.result import Parameter, RefinementReport, Site, SolveResult


def rock_salt_result(structure, biso=0.5):
    """A solution of NaCl carrying the network's map, an F_obs map and a difference map whose
    + and − lobes sit either side of Na (the map of Na moved 0.1 Å minus the map as refined)."""
    from model.density import cmed

    refined = cmed(structure, n=24, conventional=False)
    moved = structure.copy()
    moved.translate_sites([0], [0.02, 0, 0])
    difference = replace(refined, kind="difference",
                         values=cmed(moved, n=24, conventional=False).values - refined.values)
    atoms = [Site(site.specie.symbol, tuple(site.frac_coords), 1.0, biso, "4a" if site.specie.symbol == "Na" else "4b",
                  0 if site.specie.symbol == "Na" else 1) for site in structure]
    return SolveResult((5.6402, 5.6402, 5.6402, 90.0, 90.0, 90.0), "Fm-3m", 225, "cubic", atoms, 3.0, 2.0, 1.1,
                       structure=structure, density=replace(refined, kind="network"),
                       maps={"F_obs": replace(refined, kind="F_obs"), "difference": difference})


@pytest.fixture
def shown(app, rock_salt):
    app.solve.set_results([rock_salt_result(rock_salt)])
    return app


def selector_kinds(view):
    return [view.map_selector.itemData(i) for i in range(view.map_selector.count())]


def test_no_map_pane_before_there_is_a_map(app, rock_salt):
    from cmedgui.app.main import EXAMPLE

    app.files.open_paths([str(EXAMPLE)])
    assert app.maps.choices == [] and not app.window.maps_splitter.isVisible()
    app.solve.set_results([rock_salt_result(rock_salt)])
    assert app.window.maps_splitter.isVisible()


def test_the_network_map_is_shown_while_the_solve_runs(app, rock_salt):
    """A solve's progress that carries the network's map of the indexed cell puts it on screen."""
    from cmedgui.app.main import EXAMPLE
    from model.density import cmed
    from model.result import Progress

    app.files.open_paths([str(EXAMPLE)])
    seen = replace(cmed(rock_salt, n=24, conventional=False), kind="network", structure=None)
    app.runner.progress.emit("Solve", Progress("index", 0.1, "the network's density", preview=seen))
    assert app.solve.density is seen and app.maps.choices == ["network"]
    assert app.window.maps_splitter.isVisible() and app.window.density_view.map_selector.currentData() == "network"


def test_map_selector_lists_and_switches_maps(shown):
    view, maps = shown.window.density_view, shown.maps
    assert selector_kinds(view) == ["network", "F_obs", "difference", "calculated"]
    assert maps.kind == "network" and shown.solve.density.kind == "network"
    maps.set_kind("difference")  # chosen elsewhere: the selector follows the model
    assert view.map_selector.currentData() == "difference"
    view.map_selector.setCurrentIndex(1)  # the user picks F_obs
    view.map_selector.activated.emit(1)
    assert maps.kind == "F_obs" and shown.solve.density is maps.maps["F_obs"]
    assert view.map_selector.currentData() == "F_obs"
    view.map_selector.setCurrentIndex(3)
    view.map_selector.activated.emit(3)  # calculated from the atoms: made on demand
    assert shown.solve.density.kind == "calculated" and "calculated" in maps.maps
    assert shown.solve.density.electron_count == pytest.approx(4 * (11 + 17), rel=1e-3)


def test_sigma_shown_and_levels_in_sigma_are_e_per_A3(shown):
    view, maps = shown.window.density_view, shown.maps
    maps.set_kind("difference")
    assert maps.level_unit == "σ" and maps.sigmas == 3.0  # a difference map is read at ±3σ
    values = view._values  # what the view draws (the map upsampled for display)
    sigma = float(np.sqrt(np.mean((values - values.mean()) ** 2)))
    assert view.sigma == pytest.approx(sigma, rel=1e-5)
    assert view.sigma_label.text() == f"σ {sigma:.3g} e/Å³"
    assert view.level == pytest.approx(3 * sigma, rel=1e-6)
    assert view.level_label.text().startswith(f"±{3 * sigma:.3g} e/Å³ = 3.00σ")
    assert not view.level_slider.isEnabled()
    view.sigmas.setValue(5.0)  # the user asks for 5σ: the model holds it, the level follows
    assert maps.sigmas == 5.0 and view.level == pytest.approx(5 * sigma, rel=1e-6)
    view.level_unit.setCurrentText("e/Å³")
    view.level_unit.activated.emit(0)
    assert maps.level_unit == "e/Å³" and view.level_slider.isEnabled()
    view.set_level_fraction(0.5)
    assert view.level == pytest.approx(0.5 * np.abs(values).max(), rel=1e-3)
    assert view.level_label.text().endswith(f"= {view.level / sigma:.2f}σ")


def test_difference_map_gives_two_surfaces_of_opposite_sign(shown, gl):
    view = shown.window.density_view
    shown.maps.set_kind("difference")
    assert view.mesh.visible and view.mesh_minus.visible
    from cmedgui.app.widgets.density_view import isosurface_mesh

    # the surfaces lie at +level and −level, either side of Na at the origin, + on the side it moved to
    plus, _ = isosurface_mesh(view._values, view._lattice, view.level)
    minus, _ = isosurface_mesh(view._values, view._lattice, -view.level)
    assert len(plus) and len(minus)
    half = 5.6402 / 2
    plus, minus = (np.mod(v + half, 2 * half) - half for v in (plus, minus))  # nearest image of the origin
    assert np.mean(plus[:, 0]) > 0 > np.mean(minus[:, 0])
    assert np.linalg.norm(plus, axis=1).max() < 1.5 and np.linalg.norm(minus, axis=1).max() < 1.5
    image = view.render()
    rgb = image[..., :3].astype(int)
    green = np.mean((rgb[..., 1] > rgb[..., 0] + 40) & (rgb[..., 1] > rgb[..., 2] + 40))
    red = np.mean((rgb[..., 0] > rgb[..., 1] + 60) & (rgb[..., 0] > rgb[..., 2] + 60))
    assert green > 0.001 and red > 0.001


def test_hover_names_the_atom_under_the_cursor(shown, gl):
    view = shown.window.density_view
    view.reset_view()
    screen = view.atom_screen_positions()
    source = view._drawn[1]
    target = int(np.argmax(source == 0))  # an image of Na1
    text = view.hover_at(screen[target])
    assert text.startswith("Na Na1 4a  (") and view.hover.text() == text
    assert view.hover_at((-500, -500)) == ""


def test_slice_widget_draws_contours_of_both_signs(shown):
    slices, maps = shown.window.slice_view, shown.maps
    above, below = slices.contour_count()
    assert above > 50 and below == 0  # the network's map: positive contours only
    slices.plane.setEditText("1 1 0")
    slices.plane.lineEdit().editingFinished.emit()
    assert maps.hkl == (1, 1, 0)
    assert "(1 1 0)" in slices.caption.text()
    assert len(slices.atoms.data) >= 6  # Na and Cl rows lie in (110)
    maps.set_kind("difference")
    above, below = slices.contour_count()
    assert above > 20 and below > 20
    assert slices.plus.opts["pen"].color().green() > slices.plus.opts["pen"].color().red()
    assert slices.minus.opts["pen"].color().red() > slices.minus.opts["pen"].color().green()


def test_results_panel_shows_the_verdict_peak_hole_and_bound_atoms(app, rock_salt):
    result = rock_salt_result(rock_salt, biso=0.0)
    app.solve.set_results([result])
    panel = app.window.results_panel
    verdict = panel.label_text("Verdict")
    assert verdict.startswith("Solved") and "Biso on a bound" in verdict and "but:" in verdict
    peak, hole = panel.label_text("Difference peak"), panel.label_text("Difference hole")
    difference = result.maps["difference"].values
    assert peak.startswith(f"{difference.max():+.2f} e/Å³") and "from Na" in peak
    assert hole.startswith(f"{difference.min():+.2f} e/Å³") and "from Na" in hole
    assert "Na Biso 0.00 Å² (lower bound 0)" in panel.label_text("At bounds")
    unsolved = replace(result, solved=False, message="best Rwp 13.9 % is above 15 %")
    app.solve.set_results([unsolved])
    assert panel.label_text("Verdict") == "NOT solved: best Rwp 13.9 % is above 15 %"


def test_bounds_from_the_refinement_and_peaks_from_the_model():
    from cmedgui.app.evidence import evidence_rows
    from model.fourier import MapPeak
    from model.instrument import Instrument
    from model.pattern import ANODES
    from model.verdict import at_bounds

    parameters = [Parameter("Ce Biso", "biso", 0.0, None, "Å²", 0, True),
                  Parameter("O Biso", "biso", 0.07, None, "Å²", 0, True),
                  Parameter("a", "cell", 5.411, 1e-4, "Å", 0, True)]
    report = RefinementReport(parameters, [], 1.0, [2.0], ["biso"], np.ones(3), Instrument(ANODES["CuKa"]))
    result = SolveResult((5.411,) * 3 + (90.0,) * 3, "Fm-3m", 225, "cubic", [], 3.5, 2.5, 1.2, refinement=report,
                         map_peaks=[MapPeak((0.5, 0.5, 0.5), 0.8, "O1", 2.34), MapPeak((0.1, 0, 0), -0.5, "Ce1", 0.54)])
    assert at_bounds(result) == ["Ce Biso 0.00 Å² (lower bound 0)", "O Biso 0.07 Å² (lower bound 0)"]
    rows = evidence_rows(result)
    assert rows["Difference peak"] == "+0.80 e/Å³ at (0.500, 0.500, 0.500), 2.34 Å from O1"
    assert rows["Difference hole"] == "-0.50 e/Å³ at (0.100, 0.000, 0.000), 0.54 Å from Ce1"


def test_report_holds_the_difference_slice(shown, gl, tmp_path):
    import base64
    import re

    shown.maps.set_plane((1, 1, 0), 0.0)
    path = shown.exports.export("report", tmp_path / "report.html")
    assert path is not None, shown.window.message.text()
    page = path.read_text()
    assert "<h2>Difference map slice</h2>" in page and "(1 1 0) at height 0.000" in page
    assert "Difference peak" in page and "Verdict" in page
    images = re.findall(r'alt="difference map slice" src="data:image/png;base64,([^"]+)"', page)
    from imageio.v3 import imread

    slice_image = imread(base64.b64decode(images[0]))
    rgb = slice_image[..., :3].astype(int)
    assert np.any(rgb[..., 1] > rgb[..., 0] + 60) and np.any(rgb[..., 0] > rgb[..., 1] + 60)  # + and − lines
