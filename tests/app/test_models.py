import numpy as np
import pytest
from PySide6.QtCore import QSettings

from cmedgui.app.models import CompositionModel, PatternModel, SettingsModel, SolveModel
from cmedgui.app.models.pattern_model import from_x, to_x
from model.errors import InputError
from model.pattern import ANODES, Pattern


def pattern(start=10.0, stop=80.0, wavelength=ANODES["CuKa"]):
    tth = np.linspace(start, stop, 701)
    return Pattern(tth, np.exp(-((tth - 40) / 0.2) ** 2) * 100 + 5, wavelength=wavelength)


def test_pattern_model_current_units_and_excluded(qtbot):
    model = PatternModel()
    with qtbot.waitSignal(model.current_changed):
        model.add([pattern(), pattern(20, 60)])
    assert model.current == 0 and len(model.patterns) == 2
    model.set_current(1)
    assert model.pattern.two_theta[0] == 20
    model.add_excluded(45.0, 30.0)
    assert model.excluded == [(30.0, 45.0)]
    keep = model.pattern.included(model.excluded)
    assert not keep[np.searchsorted(model.pattern.two_theta, 40.0)] and keep[0]
    with qtbot.waitSignal(model.x_unit_changed):
        model.set_x_unit("q")
    with pytest.raises(ValueError):
        model.set_x_unit("energy")
    model.remove(1)
    assert model.current == 0 and model.excluded == []


def test_unit_conversions_round_trip():
    tth = np.array([10.0, 45.0, 120.0])
    for unit in ("2theta", "q", "d"):
        assert np.allclose(from_x(to_x(tth, unit, 1.5406), unit, 1.5406), tth)
    # Bragg: d = λ / (2 sin θ); Q = 2π / d
    assert np.isclose(to_x(np.array([90.0]), "d", 1.5406)[0], 1.5406 / (2 * np.sin(np.radians(45))))


def test_composition_cycles_and_formula(qtbot):
    model = CompositionModel()
    for expected in ("known", "possible", "excluded", ""):
        model.cycle("Fe")
        assert model.state("Fe") == expected
    model.set_formula("CeO2")
    assert model.known == ["O", "Ce"]
    with pytest.raises(InputError):
        model.set_formula("Xx3")
    with pytest.raises(InputError):
        model.set_known(["Na", "Qq"])
    model.set_state("Na", "excluded")
    assert model.excluded == ["Na"]
    with pytest.raises(InputError, match="excluded"):  # an excluded element stays excluded
        model.set_formula("NaCl")
    assert model.excluded == ["Na"] and model.formula == "CeO2"


def test_settings_remember_recent_files(tmp_path):
    path = tmp_path / "s.ini"
    settings = SettingsModel(QSettings(str(path), QSettings.Format.IniFormat))
    for name in ("a.xy", "b.xy", "a.xy"):
        settings.add_recent(str(tmp_path / name))
    settings.wavelength = "MoKa"
    settings.sync()
    again = SettingsModel(QSettings(str(path), QSettings.Format.IniFormat))
    assert [p.split("/")[-1] for p in again.recent] == ["a.xy", "b.xy"]
    assert again.wavelength == "MoKa" and again.last_folder == str(tmp_path)


def test_solve_model_browses_solutions(qtbot):
    from model.result import SolveResult

    results = [SolveResult((4, 4, 4, 90, 90, 90), "Fm-3m", 225, "cubic", [], rwp, rwp, 1.0) for rwp in (5, 9)]
    model = SolveModel()
    model.set_results(results)
    assert model.current == 0
    with qtbot.waitSignal(model.current_changed):
        model.set_current(1)
    assert model.result.rwp == 9
