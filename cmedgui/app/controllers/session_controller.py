"""File › Save session / Open session: the whole window's state in one file (model.session).

Opening reads and checks the file completely before anything on screen changes, then swaps the
state into the models in one go; a damaged file is one line in the status bar and the window
stays as it was.
"""

from __future__ import annotations

import json
from pathlib import Path

from pymatgen.core import Element
from PySide6.QtCore import QByteArray
from PySide6.QtWidgets import QFileDialog

from cmedgui.app.jobs import JobRunner
from cmedgui.app.models import CompositionModel, PatternModel, SettingsModel, SolveModel
from cmedgui.app.models.composition_model import STATES
from cmedgui.app.models.map_model import LEVEL_UNITS, MapModel
from cmedgui.app.models.pattern_model import SCALINGS, X_UNITS
from cmedgui.app.models.refinement_model import RefinementModel
from cmedgui.app.widgets.main_window import MainWindow
from model.errors import InputError

FILTER = "cmedgui session (*.cmedgui)"


class SessionController:
    def __init__(self, patterns: PatternModel, composition: CompositionModel, solve: SolveModel,
                 refinement: RefinementModel, settings: SettingsModel, window: MainWindow, runner: JobRunner,
                 maps: MapModel):
        self.patterns, self.composition, self.solve, self.maps = patterns, composition, solve, maps
        self.refinement, self.settings, self.window, self.runner = refinement, settings, window, runner
        window.save_session_action.triggered.connect(self.save_dialog)
        window.open_session_action.triggered.connect(self.open_dialog)

    def save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, "Save session",
                                              str(Path(self.settings.last_folder) / "session.cmedgui"), FILTER)
        if path:
            self.save(path if path.endswith(".cmedgui") else path + ".cmedgui")

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open session", self.settings.last_folder, FILTER)
        if path:
            self.open(path)

    def save(self, path: str | Path) -> bool:
        # pymatgen and torch: load on first use
        from model.session import Session, save_session

        window = self.window
        session = Session(
            patterns=list(self.patterns.patterns), current_pattern=self.patterns.current,
            excluded=list(self.patterns.excluded), x_unit=self.patterns.x_unit, scaling=self.patterns.scaling,
            elements=dict(self.composition.states), formula=self.composition.formula,
            settings={"wavelength": window.wavelength.currentText(),
                      "crystal_system": window.crystal_system.currentText(),
                      "device": window.device.currentText(),
                      "window_state": bytes(window.saveState().toHex()).decode(),
                      "map_view": json.dumps(self._map_view())},
            results=list(self.solve.results), current_result=self.solve.current, structure=self.solve.structure,
            density=self.solve.density, free=self.refinement.free_groups)
        try:
            save_session(path, session)
        except InputError as error:
            window.show_error(str(error))
            return False
        self.settings.last_folder = str(Path(path).parent)
        window.show_message(f"Saved session {path}")
        return True

    def open(self, path: str | Path) -> bool:
        """Load ``path`` fully, check it, then show it; False (and one line) when it cannot be."""
        from model.session import load_session

        if self.runner.busy:
            self.window.show_error(f"{path}: wait for {self.runner.current} to finish (or cancel it) first")
            return False
        try:
            session = load_session(path)
            _check(path, session)
        except InputError as error:
            self.window.show_error(str(error))
            return False
        self._show(session)
        self.settings.last_folder = str(Path(path).parent)
        self.window.show_message(f"Opened session {path}")
        return True

    def _show(self, session) -> None:
        window, solve = self.window, self.solve
        self.patterns.restore(session.patterns, session.current_pattern, session.excluded)
        self.patterns.set_x_unit(session.x_unit)
        self.patterns.set_scaling(session.scaling)
        solve.clear()
        if session.results:
            solve.set_results(session.results)
            solve.set_current(session.current_result)
        if session.density is not None:
            solve.set_density(session.density)
        if session.structure is not None and not session.results:
            solve.set_structure(session.structure)
        self.composition.restore(session.elements, session.formula)
        self.refinement.restore_free(session.free)
        settings = session.settings
        window.wavelength.setCurrentText(settings.get("wavelength", window.wavelength.currentText()))
        window.crystal_system.setCurrentText(settings.get("crystal_system", "auto"))
        window.device.setCurrentText(settings.get("device", window.device.currentText()))
        if settings.get("window_state"):
            window.restoreState(QByteArray.fromHex(settings["window_state"].encode()))
        if settings.get("map_view"):
            view = json.loads(settings["map_view"])
            self.maps.set_kind(view["kind"])
            self.maps.set_level(view["unit"], view["sigmas"])
            self.maps.set_plane(tuple(view["hkl"]), view["offset"])

    def _map_view(self) -> dict:
        """The 3D view's map, its level and the slice plane."""
        maps = self.maps
        return {"kind": maps.kind, "unit": maps.level_unit, "sigmas": maps.sigmas, "hkl": list(maps.hkl),
                "offset": maps.offset}


def _check(path, session) -> None:
    """What the models would refuse, refused before anything changes."""
    def fail(problem: str):
        raise InputError(path, f"damaged session: {problem}")

    if not all(Element.is_valid_symbol(s) and state in STATES for s, state in session.elements.items()):
        fail("an element state is not an element and one of " + ", ".join(STATES))
    if session.x_unit not in X_UNITS or session.scaling not in SCALINGS:
        fail(f"unknown axis {session.x_unit!r} or scaling {session.scaling!r}")
    if not -1 <= session.current_pattern < len(session.patterns) or (session.patterns and session.current_pattern < 0):
        fail(f"pattern {session.current_pattern} of {len(session.patterns)}")
    if not -1 <= session.current_result < len(session.results) or (session.results and session.current_result < 0):
        fail(f"solution {session.current_result} of {len(session.results)}")
    view = session.settings.get("map_view")
    if view is not None:
        try:
            view = json.loads(view)
            valid = (view["unit"] in LEVEL_UNITS and float(view["sigmas"]) > 0 and len(view["hkl"]) == 3
                     and any(int(i) for i in view["hkl"]) and 0 <= float(view["offset"]) < 1)
        except (ValueError, KeyError, TypeError):
            valid = False
        if not valid:
            fail("the map view (level unit, σ multiple, slice plane) cannot be read")
