"""The parameter panel (values, esds, tick boxes, Refine again) and File › Save/Open session."""

import numpy as np
import pytest
from PySide6.QtCore import Qt


def _panel_rows(panel):
    tree = panel.tree
    return {tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole):
            (tree.topLevelItem(i).checkState(0) == Qt.CheckState.Checked,
             [(tree.topLevelItem(i).child(j).text(0), tree.topLevelItem(i).child(j).text(1))
              for j in range(tree.topLevelItem(i).childCount())])
            for i in range(tree.topLevelItemCount())}


@pytest.mark.slow
def test_panel_refine_again_and_a_session_round_trip(inline_app, rock_salt_cif, tmp_path):
    app = inline_app()
    app.files.open_paths([str(rock_salt_cif)])
    app.composition.set_state("K", "possible")
    app.window.refine_action.trigger()
    result = app.solve.result
    assert result is not None and result.refinement is not None
    panel = app.window.parameter_panel
    rows = _panel_rows(panel)
    assert rows["cell"][0] and rows["profile"][0] and not rows["displacement"][0]
    a_text = dict(rows["cell"][1])["a"]
    assert "(" in a_text and a_text.startswith("5.64")  # value(esd)
    assert "Rexp" in panel.agreement.text() and "R-Bragg" in panel.agreement.text()

    # untick everything but scale and cell, and refine again
    for group in set(rows) - {"scale", "cell"}:
        panel.group_item(group).setCheckState(0, Qt.CheckState.Unchecked)
    assert app.refinement.free_groups == ["scale", "cell"]
    u_before = next(q for q in result.refinement.parameters if q.name == "U").value
    panel.refine_button.click()
    again = app.solve.result
    assert again is not result and again.refinement.free == ["scale", "cell"]
    u = next(q for q in again.refinement.parameters if q.name == "U")
    assert u.value == u_before and u.esd is None
    assert "Refine again" in app.window.message.text()
    assert app.refinement.free_groups == ["scale", "cell"]  # the ticks stay
    assert not _panel_rows(panel)["profile"][0]

    # save, reopen in a fresh window: the same state, drawn the same
    app.patterns.set_scaling("sqrt")
    assert {"F_obs", "F_calc", "difference", "2F_obs-F_calc"} <= set(again.maps) and again.map_peaks
    app.maps.set_kind("difference")
    app.maps.set_level("σ", 2.5)
    app.maps.set_plane((1, 1, 0), 0.25)
    path = tmp_path / "nacl.cmedgui"
    assert app.sessions.save(path), app.window.message.text()
    reopened = inline_app("other.ini")
    assert reopened.sessions.open(path), reopened.window.message.text()
    assert [p.name for p in reopened.patterns.patterns] == [p.name for p in app.patterns.patterns]
    assert np.array_equal(reopened.patterns.pattern.intensity, app.patterns.pattern.intensity)
    assert reopened.composition.states == app.composition.states
    assert reopened.patterns.scaling == "sqrt"
    assert reopened.solve.result.lattice == again.lattice and reopened.solve.result.atoms == again.atoms
    assert np.array_equal(reopened.patterns.fit.calculated, app.patterns.fit.calculated)
    assert len(reopened.patterns.reflections) == len(app.patterns.reflections)
    assert _panel_rows(reopened.window.parameter_panel) == _panel_rows(panel)
    assert reopened.window.parameter_panel.agreement.text() == panel.agreement.text()
    assert reopened.window.results_panel.sites.rowCount() == app.window.results_panel.sites.rowCount()
    assert np.array_equal(reopened.solve.density.values, app.solve.density.values)
    assert np.array_equal(reopened.solve.result.maps["difference"].values, again.maps["difference"].values)
    assert reopened.solve.result.map_peaks == again.map_peaks
    assert (reopened.maps.kind, reopened.maps.level_unit, reopened.maps.sigmas) == ("difference", "σ", 2.5)
    assert (reopened.maps.hkl, reopened.maps.offset) == ((1, 1, 0), 0.25)


def test_a_damaged_session_changes_nothing(inline_app, rock_salt_cif, tmp_path):
    app = inline_app()
    app.files.open_paths([str(rock_salt_cif)])
    patterns, structure = list(app.patterns.patterns), app.solve.structure
    bad = tmp_path / "bad.cmedgui"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    assert not app.sessions.open(bad)
    message = app.window.message.text()
    assert str(bad) in message and "\n" not in message
    assert app.patterns.patterns == patterns and app.solve.structure is structure
