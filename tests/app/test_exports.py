"""Every export of the window, written atomically and read back."""

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
