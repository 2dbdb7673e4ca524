"""Building the window (models, widgets, controllers) and the scripted mode of `cmedgui`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from cmedgui.app.about import about_html
from cmedgui.app.controllers.composition_controller import CompositionController
from cmedgui.app.controllers.export_controller import ExportController
from cmedgui.app.controllers.file_controller import FileController
from cmedgui.app.controllers.map_controller import MapController
from cmedgui.app.controllers.pattern_controller import PatternController
from cmedgui.app.controllers.refinement_controller import RefinementController
from cmedgui.app.controllers.session_controller import SessionController
from cmedgui.app.controllers.solve_controller import SolveController
from cmedgui.app.figures import save_image, window_image
from cmedgui.app.jobs import JobRunner, describe_error
from cmedgui.app.models import (
    CompositionModel,
    MapModel,
    PatternModel,
    SettingsModel,
    SolveModel,
)
from cmedgui.app.models.refinement_model import RefinementModel
from cmedgui.app.widgets.main_window import MainWindow
from model.errors import InputError

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
EXAMPLE = EXAMPLES / "CeO2_CuKa.xy"
EXAMPLE_ELEMENTS = ("Ce", "O")
NO_OPENGL_PLATFORMS = ("offscreen", "minimal")  # Qt platforms on which the 3D view cannot render


class App:
    """One window with its models and controllers."""

    def __init__(self, settings: QSettings | None = None, inline_jobs: bool = False):
        self.patterns = PatternModel()
        self.composition = CompositionModel()
        self.solve = SolveModel()
        self.maps = MapModel()
        self.settings = SettingsModel(settings)
        self.refinement = RefinementModel()
        self.runner = JobRunner(inline=inline_jobs)
        self.window = MainWindow()
        self.files = FileController(self.patterns, self.solve, self.settings, self.window)
        self.pattern_view = PatternController(self.patterns, self.window)
        self.elements = CompositionController(self.composition, self.solve, self.window)
        self.solver = SolveController(self.patterns, self.composition, self.solve, self.settings, self.window,
                                      self.runner)
        self.map_view = MapController(self.maps, self.solve, self.window)
        self.exports = ExportController(self.patterns, self.solve, self.settings, self.window, self.maps)
        self.refiner = RefinementController(self.refinement, self.patterns, self.solve, self.window, self.runner)
        self.sessions = SessionController(self.patterns, self.composition, self.solve, self.refinement, self.settings,
                                          self.window, self.runner, self.maps)
        geometry, state = self.settings.window_state()
        if geometry is not None:
            self.window.restoreGeometry(geometry)
        if state is not None:
            self.window.restoreState(state)
        self.window.closing.connect(self.close)
        self.window.about_action.triggered.connect(lambda: self.window.show_about(about_html()))

    def show_device(self) -> None:
        """Device and model version in the status bar (imports torch, so after the window shows)."""
        import torch

        from model.predict import Predictor, default_device, device_name

        chosen = self.settings.device
        device = torch.device(chosen) if chosen == "cpu" else default_device()  # cuda falls back to CPU
        name = "CPU" if device.type == "cpu" else device_name(device)
        try:
            text = f"{name} · model {Predictor.load(device=str(device)).version}"
        except InputError as error:
            text = f"{name} · no network ({error.problem})"
        self.window.device_label.setText(text)

    def screenshot(self, path: str | Path) -> Path:
        view = self.window.density_view
        return save_image(window_image(self.window, [(view.canvas.native, view.render())]), path)

    def close(self) -> None:
        """Stop a running job and remember the layout."""
        if self.runner.busy:
            self.runner.cancel()
            self.runner.wait(5000)
        self.settings.save_window_state(self.window.saveGeometry(), self.window.saveState())
        self.settings.sync()


def run_window(args: argparse.Namespace) -> int:
    """`cmedgui` [--open FILE…] [--elements E…] [--formula F] [--solve] [--screenshot PNG]
    [--export DIR] [--quit]."""
    qt_app = QApplication.instance() or QApplication(sys.argv[:1])
    qt_app.setApplicationName("cmedgui")
    qt_app.setOrganizationName("cmedgui")
    qt_app.setStyle("Fusion")  # the same look on every platform, and in screenshots
    app = App()
    window = app.window

    def report_bug(kind, error, trace) -> None:
        # A bug in a slot: the traceback goes to stderr for the bug report, the window says one line.
        sys.__excepthook__(kind, error, trace)
        window.show_error(describe_error(error))

    sys.excepthook = report_bug
    window.show()
    files = args.open_files or [str(EXAMPLE)]
    added = app.files.open_paths(files)
    elements = args.elements or ([] if args.open_files else list(EXAMPLE_ELEMENTS))
    exit_code = 0 if added else 2
    if not added:
        print(f"cmedgui: {window.message.text()}", file=sys.stderr)
    try:
        if elements:
            app.composition.set_known(elements)
        if args.formula:
            app.composition.set_formula(args.formula)
    except InputError as error:
        window.show_error(str(error))
        print(f"cmedgui: {error}", file=sys.stderr)
        exit_code = 2
    QTimer.singleShot(0, app.show_device)
    failed: list[str] = []

    def finish() -> None:
        if args.screenshot:
            qt_app.processEvents()
            try:
                print(f"screenshot: {app.screenshot(args.screenshot)}")
            except InputError as error:  # e.g. a .jpg name: say so, and still quit when asked
                failed.append(str(error))
        if args.export:
            try:
                written, problems = app.exports.export_all(
                    args.export, gl=qt_app.platformName() not in NO_OPENGL_PLATFORMS)
            except InputError as error:
                written, problems = [], [str(error)]
            for path in written:
                print(f"exported: {path}")
            failed.extend(problems)
        if args.quit:
            window.close()
            qt_app.quit()

    def solve_then_finish() -> None:
        app.solver.start_solve()
        if not app.runner.busy:  # refused (no elements, …): the reason is in the status bar
            failed.append(window.message.text())
            finish()

    if args.solve and added:
        app.runner.failed.connect(lambda name, message: failed.append(message))
        app.runner.finished.connect(
            lambda *_: any(r.solved for r in app.solve.results) or failed.append(window.message.text()))
        app.runner.cancelled.connect(lambda name: failed.append(f"{name} cancelled"))
        app.runner.busy_changed.connect(lambda busy: busy or QTimer.singleShot(300, finish))
        QTimer.singleShot(500, solve_then_finish)
    elif args.screenshot or args.export or args.quit:
        QTimer.singleShot(800, finish)
    code = qt_app.exec()
    app.runner.wait()  # a QThread destroyed while its run() is still returning aborts the process
    for message in failed:
        print(f"cmedgui: {message}", file=sys.stderr)
    return exit_code or (1 if failed else code)
