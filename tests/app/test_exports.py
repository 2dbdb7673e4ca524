"""Every export of the window, written atomically and read back."""

import re

import numpy as np
import pytest
from pymatgen.io.common import VolumetricData
from pymatgen.io.vasp import Chgcar
from PySide6.QtGui import QImage
from PySide6.QtSvg import QSvgRenderer

from model.density import cmed
from model.readers import read_patterns
from model.result import Fit, Reflection, Site, SolveResult
from model.structure import load_structure


@pytest.fixture
def solved(app, rock_salt, rock_salt_cif):
    """The window after a NaCl result arrived (the structure's own pattern as its fit)."""
    app.files.open_paths([str(rock_salt_cif)])
    pattern = app.patterns.pattern
    fit = Fit(pattern.two_theta, pattern.intensity, pattern.intensity * 0.98, np.full(len(pattern), 20.0))
    result = SolveResult(
        lattice=(5.6402, 5.6402, 5.6402, 90.0, 90.0, 90.0), space_group="Fm-3m", space_group_number=225,
        crystal_system="cubic", atoms=[Site(s.specie.symbol, tuple(s.frac_coords)) for s in rock_salt],
        rwp=4.2, rp=3.1, gof=1.2, fit=fit, reflections=[Reflection((1, 1, 1), 27.4, 3.256)],
        density=cmed(rock_salt), timings={"refine": 1.5}, structure=rock_salt)
    app.solve.set_results([result])
    return app


@pytest.mark.parametrize("name", ["out.cif"])
def test_cif(solved, tmp_path, name):
    path = solved.exports.export("cif", tmp_path / name)
    assert load_structure(path).composition.reduced_formula == "NaCl"


@pytest.mark.parametrize("name", ["rho.cube", "rho.xsf", "CHGCAR.vasp"])
def test_density(solved, tmp_path, name):
    path = solved.exports.export("density", tmp_path / name)
    assert path is not None, solved.window.message.text()
    if name.endswith(".cube"):
        grid = VolumetricData.from_cube(str(path)).data["total"]
        assert grid.shape == solved.solve.density.values.shape
    elif name.endswith(".vasp"):
        assert Chgcar.from_file(str(path)).data["total"].shape == solved.solve.density.values.shape
    else:
        assert "DATAGRID_3D" in path.read_text()


def test_the_map_shown_and_the_peaks_after_a_refinement(inline_app, rock_salt_cif, tmp_path):
    app = inline_app()
    app.files.open_paths([str(rock_salt_cif)])
    app.window.refine_action.trigger()
    result = app.solve.result
    app.maps.set_kind("difference")
    path = app.exports.export("density", tmp_path / "diff.cube")
    assert path is not None, app.window.message.text()
    head = path.read_text().splitlines()[0]
    assert head.startswith("cmedgui difference map") and "difference map" in app.window.message.text()
    cube = VolumetricData.from_cube(str(path))
    assert cube.data["total"].shape == result.maps["difference"].values.shape
    assert np.allclose(cube.structure.lattice.abc, result.maps["difference"].structure.lattice.abc, atol=1e-4)
    peaks = app.exports.export("peaks", tmp_path / "peaks.csv")
    lines = peaks.read_text().splitlines()
    assert lines[0] == "x,y,z,height,nearest_atom" and len(lines) == 1 + len(result.map_peaks)
    heights = [abs(float(line.split(",")[3])) for line in lines[1:]]
    assert heights == sorted(heights, reverse=True)


@pytest.mark.parametrize("name", ["fit.xy", "fit.csv"])
def test_fitted_pattern(solved, tmp_path, name):
    path = solved.exports.export("fit", tmp_path / name)
    (back,) = read_patterns(path)
    assert np.allclose(back.two_theta, solved.patterns.fit.two_theta, atol=1e-4)


@pytest.mark.parametrize("key", ["pattern_figure", "density_figure"])
@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_figures(solved, tmp_path, key, suffix, request):
    if key == "density_figure":
        request.getfixturevalue("gl")
    path = solved.exports.export(key, tmp_path / f"figure{suffix}")
    assert path is not None, solved.window.message.text()
    if suffix == ".png":
        image = QImage(str(path))
        assert image.width() >= 300 and image.height() >= 200
    elif suffix == ".svg":
        assert QSvgRenderer(str(path)).isValid()
    else:
        assert path.read_bytes().startswith(b"%PDF")
    assert not list(tmp_path.glob(".*.part"))  # nothing half-written left behind


def test_report(solved, tmp_path, gl):
    path = solved.exports.export("report", tmp_path / "report.html")
    text = path.read_text()
    assert text.count("data:image/png;base64,") == 2
    assert "Fm-3m" in text and "Rwp 4.20 %" in text and text.count("<tr>") >= 3


def test_export_problems_are_one_line(app, tmp_path):
    assert app.exports.export("cif", tmp_path / "x.cif") is None
    assert "no structure" in app.window.message.text()
    app.files.open_paths([str(tmp_path / "missing.xy")])
    assert app.exports.export("pattern_figure", tmp_path / "fig.bmp") is None
    assert "fig.bmp" in app.window.message.text()


def svg_curve(svg_text: str, colour: str) -> np.ndarray:
    """The (x, y) data points of the path drawn in ``colour`` with the most points (QSvgGenerator
    writes a curve in data coordinates under a transform to pixels)."""
    paths = re.findall(r'<g [^>]*stroke="' + colour.lower() + r'"[^>]*>\s*<path [^>]*d="([^"]*)"', svg_text)
    longest = max(paths, key=len)
    return np.array([point.split(",") for point in re.findall(r"[-+0-9.e]+,[-+0-9.e]+", longest)], dtype=float)


def test_vector_figure_of_the_bundled_example_is_small_and_keeps_its_peaks(app, tmp_path):
    from scipy.signal import find_peaks

    from cmedgui.app.main import EXAMPLE
    from cmedgui.app.widgets.pattern_widget import OVERLAY_COLOURS

    app.files.open_paths([str(EXAMPLE)])
    pattern, widget = app.patterns.pattern, app.window.pattern_widget
    svg = app.exports.export("pattern_figure", tmp_path / "pattern.svg")
    pdf = app.exports.export("pattern_figure", tmp_path / "pattern.pdf")
    assert svg.stat().st_size < 500_000 and pdf.stat().st_size < 500_000  # were 3–5 and 6–8 MB
    assert widget._observed[0].opts["symbol"] == "o"  # the window still draws every point
    points = svg_curve(svg.read_text(), OVERLAY_COLOURS[0])
    assert len(points) <= 2 * widget.main.vb.width() + 2 < len(pattern)  # one column's lowest and highest
    peaks, _ = find_peaks(pattern.intensity, prominence=0.05 * pattern.intensity.max())
    assert len(peaks) >= 10
    (low, high), _ = widget.main.viewRange()
    column = (high - low) / widget.main.vb.width()  # degrees 2θ a pixel
    for peak in peaks:  # within its pixel column, the figure reaches each peak's full height
        near = np.abs(points[:, 0] - pattern.two_theta[peak]) <= column
        assert points[near, 1].max() >= pattern.intensity[peak] * (1 - 1e-4)
    top = np.argmax(pattern.intensity)
    assert points[:, 1].max() == pytest.approx(pattern.intensity[top], rel=1e-4)


@pytest.mark.parametrize("reverse", [False, True])
def test_decimation_keeps_every_columns_lowest_and_highest_point(reverse):
    from cmedgui.app.widgets.pattern_widget import decimate_min_max

    rng = np.random.default_rng(3)
    x = np.linspace(5, 90, 20_000)
    y = rng.poisson(100, x.size) + 5000 * np.exp(-((x - 28.5) / 0.05) ** 2)
    if reverse:  # d spacings fall as 2θ rises
        x, y = x[::-1], y[::-1]
    fewer_x, fewer_y = decimate_min_max(x, y, 10, 80, 500)
    assert len(fewer_x) <= 2 * 500 + 2 and np.all(np.diff(fewer_x) > 0) != reverse
    column = np.floor((x - 10) / 70 * 500)
    fewer_column = np.floor((fewer_x - 10) / 70 * 500)
    for c in (0, 100, 264, 499):  # 264 holds the peak at 28.5°
        assert fewer_y[fewer_column == c].max() == y[column == c].max()
        assert fewer_y[fewer_column == c].min() == y[column == c].min()
    assert fewer_x[0] < 10 and fewer_x[-1] > 80 if not reverse else fewer_x[0] > 80
    assert decimate_min_max(x[:900], y[:900], 10, 80, 500)[0].size == 900  # sparse enough: all kept
