"""The window: opening every reader format, drops, element picker, axes, jobs, errors."""

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMessageBox

from cmedgui.app.main import EXAMPLE
from model.instrument import bragg_d
from model.pattern import two_theta_to_q

REPO = Path(__file__).resolve().parents[2]


def one_file_per_format(formats: Path) -> list[Path]:
    return [min(p for p in folder.iterdir() if p.is_file())
            for folder in sorted(formats.iterdir()) if folder.is_dir()]


def test_opens_one_file_of_every_format(app, shared_data):
    files = one_file_per_format(shared_data / "formats")
    assert len(files) >= 12
    for path in files:
        before = len(app.patterns.patterns)
        assert app.files.open_paths([str(path)]) >= 1, app.window.message.text()
        assert len(app.patterns.patterns) > before
        assert app.window.file_list.count() == len(app.patterns.patterns)
        assert "Opened" in app.window.message.text() or "wavelength" in app.window.message.text()


def test_drop_of_several_files(app, rock_salt_cif):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(EXAMPLE)), QUrl.fromLocalFile(str(rock_salt_cif))])
    event = QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    app.window.dropEvent(event)
    assert [p.name for p in app.patterns.patterns] == ["CeO2_CuKa.xy", "NaCl.cif"]
    assert app.patterns.current == 1
    # a structure CIF brings its structure and its density into the 3D view
    assert app.solve.structure.composition.reduced_formula == "NaCl"
    assert app.solve.density is not None
    assert app.composition.known == ["Na", "Cl"]  # the structure's elements, as none were ticked
    assert app.settings.recent[0].endswith("NaCl.cif")


def test_bad_file_is_one_line_in_the_status_bar(app, tmp_path):
    bad = tmp_path / "broken.xrdml"
    bad.write_text("<xml>not a scan")
    assert app.files.open_paths([str(bad)]) == 0
    text = app.window.message.text()
    assert "broken.xrdml" in text and "\n" not in text and "Traceback" not in text
    assert app.patterns.patterns == []


def test_element_picker_cycles_states(app, qtbot):
    button = app.window.periodic_table.buttons["Ce"]
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert app.composition.known == ["Ce"]
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert app.composition.possible == ["Ce"]
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert app.composition.excluded == ["Ce"]
    assert "excluded" in button.toolTip()
    app.window.periodic_table.formula.setText("NaCl")
    app.window.periodic_table.formula.editingFinished.emit()
    assert app.composition.known == ["Na", "Cl"]


def test_axis_switching_and_scaling(app):
    app.files.open_paths([str(EXAMPLE)])
    pattern = app.patterns.pattern
    curve = app.window.pattern_widget._curves[0]
    assert np.allclose(curve.xData, pattern.two_theta)
    app.window.x_unit_actions["q"].trigger()
    assert app.patterns.x_unit == "q"
    curve = app.window.pattern_widget._curves[0]
    assert np.allclose(curve.xData, two_theta_to_q(pattern.two_theta, pattern.wavelength.ka1))
    assert app.window.pattern_widget.diff.getAxis("bottom").labelText == "Q"
    app.window.x_unit_actions["d"].trigger()
    assert np.isclose(app.window.pattern_widget._curves[0].xData[0],
                      bragg_d(pattern.two_theta[0], pattern.wavelength.ka1))
    app.window.scaling_actions["log"].trigger()
    assert np.isclose(app.window.pattern_widget._curves[0].yData.max(), np.log10(pattern.intensity.max()))


def test_excluded_region_dragged_in_q_is_stored_in_two_theta(app):
    app.files.open_paths([str(EXAMPLE)])
    app.patterns.set_x_unit("q")
    lam = app.patterns.pattern.wavelength.ka1
    low, high = two_theta_to_q(np.array([30.0, 35.0]), lam)
    app.window.pattern_widget.excluded_added.emit(float(low), float(high))
    assert np.allclose(app.patterns.excluded, [(30.0, 35.0)])
    assert len(app.window.pattern_widget._regions) == 1


def test_solve_without_elements_says_what_to_do(app):
    app.files.open_paths([str(EXAMPLE)])
    app.solver.start_solve()
    assert not app.runner.busy
    assert "elements" in app.window.message.text()


@pytest.mark.slow
def test_refine_runs_in_the_worker_and_fills_the_views(app, qtbot, rock_salt_cif):
    app.files.open_paths([str(rock_salt_cif)])
    with qtbot.waitSignal(app.runner.finished, timeout=120_000):
        app.window.refine_action.trigger()
        assert app.runner.busy and not app.window.solve_button.isEnabled()
        assert app.window.progress.isVisible()
    assert not app.window.progress.isVisible()
    result = app.solve.result
    assert result.space_group_number == 225 and result.rwp < 20
    assert app.patterns.fit is not None and len(app.patterns.reflections) > 5
    assert "Rwp" in app.window.results_panel.label_text("Agreement")
    assert app.window.results_panel.sites.rowCount() == len(result.sites)
    assert len(app.window.pattern_widget._ticks.data) == len(app.patterns.reflections)


def test_cancel_stops_a_running_refine(app, qtbot, rock_salt_cif):
    app.files.open_paths([str(rock_salt_cif)])
    app.window.refine_action.trigger()
    assert app.runner.busy
    with qtbot.waitSignal(app.runner.cancelled, timeout=20_000):
        app.window.cancel_button.click()
    assert "cancelled" in app.window.message.text()
    assert app.solve.results == [] and app.window.solve_button.isEnabled()


def test_solve_runs_through_the_runner_and_cancel_stops_it(app, qtbot):
    app.files.open_paths([str(EXAMPLE)])
    app.composition.set_known(["Ce", "O"])
    stages = []
    app.runner.progress.connect(lambda name, step: stages.append(step.stage))
    app.window.solve_action.trigger()
    assert app.runner.busy and app.runner.current == "Solve"
    qtbot.waitUntil(lambda: bool(stages), timeout=10_000)
    assert app.window.progress.format().startswith("Solve: ")
    with qtbot.waitSignal(app.runner.cancelled, timeout=60_000):
        app.window.cancel_action.trigger()
        assert "Cancelling" in app.window.message.text()
    assert app.solve.results == [] and not app.window.progress.isVisible()


def test_open_recent_and_layout_are_remembered(app, tmp_path):
    app.files.open_paths([str(EXAMPLE)])
    actions = app.window.recent_menu.actions()
    assert [a.text() for a in actions] == [str(EXAMPLE.resolve())]
    actions[0].trigger()
    assert len(app.patterns.patterns) == 2
    app.window.device.setCurrentText("cpu")
    app.window.close()
    from PySide6.QtCore import QSettings

    from cmedgui.app.models import SettingsModel

    again = SettingsModel(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    assert again.device == "cpu" and again.window_state()[0] is not None
    assert again.last_folder == str(EXAMPLE.parent.resolve())


def test_a_file_without_wavelength_gets_the_chosen_one(app, tmp_path):
    plain = tmp_path / "plain.xy"
    plain.write_text("".join(f"{10 + 0.05 * i:.2f} {100 + i % 7}\n" for i in range(400)))
    app.window.wavelength.setCurrentText("MoKa (0.70932 Å)")
    app.files.open_paths([str(plain)])
    assert app.patterns.pattern.wavelength.label == "MoKa"
    app.window.wavelength.setCurrentText("from file")
    app.files.open_paths([str(plain)])
    assert app.patterns.pattern.wavelength.label == "MoKa"  # remembered from the last choice
    assert "states no wavelength" in app.window.message.text()


@pytest.mark.parametrize("stage", ["Solve: index", "Solve: preprocess", "Refine: refine"])
def test_progress_text_is_never_clipped(app, qtbot, stage):
    app.window.show_busy(stage, 0.05)
    bar = app.window.progress
    qtbot.waitUntil(lambda: bar.isVisible())
    assert bar.text() == f"{stage} 5%"
    assert bar.width() >= bar.fontMetrics().horizontalAdvance(bar.text()) + 20


def test_help_about_names_the_version_the_model_card_and_the_seed_paper(app):
    from cmedgui import __version__

    app.window.about_action.trigger()
    box = app.window.findChild(QMessageBox)
    text = box.text()
    assert f"cmedgui {__version__}" in text and "arXiv:2312.15136" in text and "Guo" in text
    card = json.loads((REPO / "resources" / "weights" / "ours.card.json").read_text())
    assert "used by Solve" in text and card["sha256"][:12] in text and "ours.card.json" in text
    box.close()


def test_several_patterns_offset_and_normalised_with_the_intensity_unit(app, tmp_path, rock_salt_cif):
    counts = tmp_path / "counts.xrdml"
    counts.write_text(XRDML.format(" ".join(str(100 + 50 * (i % 9)) for i in range(200))))
    app.files.open_paths([str(counts)])
    widget = app.window.pattern_widget
    assert widget.main.getAxis("left").labelText == "Intensity (counts)"  # the reader's unit
    app.files.open_paths([str(EXAMPLE), str(rock_salt_cif)])
    assert widget.main.getAxis("left").labelText == "Intensity (arb. units)"  # units differ
    tallest = max(np.ptp(p.intensity) for p in app.patterns.patterns)
    app.window.offset_actions[0.5].trigger()
    lows = [curve.yData.min() for curve in widget._curves]
    assert lows == pytest.approx([p.intensity.min() + 0.5 * tallest * i for i, p in enumerate(app.patterns.patterns)])
    app.window.normalise_action.setChecked(True)
    step = 0.5 * max(np.ptp(p.intensity / p.intensity.max()) for p in app.patterns.patterns)
    assert [curve.yData.max() for curve in widget._curves] == pytest.approx([1.0, 1.0 + step, 1.0 + 2 * step])
    assert widget.main.getAxis("left").labelText == "Intensity (normalised to its maximum)"
    names = [label.text for _, label in widget.legend.items]
    assert names == ["counts.xrdml", "CeO2_CuKa.xy", "NaCl.cif (observed)"]
    assert widget.legend not in widget.main.vb.childItems()  # above the plot, never over its data


XRDML = """<?xml version="1.0" encoding="UTF-8"?>
<xrdMeasurements xmlns="http://www.xrdml.com/XRDMeasurement/1.5">
 <xrdMeasurement measurementType="Scan" status="Completed">
  <usedWavelength intended="K-Alpha 1"><kAlpha1 unit="Angstrom">1.5405980</kAlpha1></usedWavelength>
  <scan scanAxis="Gonio" status="Completed">
   <dataPoints>
    <positions axis="2Theta" unit="deg"><startPosition>10</startPosition><endPosition>50</endPosition></positions>
    <counts unit="counts">{}</counts>
   </dataPoints>
  </scan>
 </xrdMeasurement>
</xrdMeasurements>
"""
