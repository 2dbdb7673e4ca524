"""File › Export: structure, density, fitted pattern (model.exporters), figures and the solve report."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from cmedgui.app.figures import rgba_image, save_image, save_pattern_figure
from cmedgui.app.models import MapModel, PatternModel, SettingsModel, SolveModel
from cmedgui.app.report import write_report
from cmedgui.app.widgets.main_window import MainWindow
from model.errors import InputError

FIGURE_FILTER = "PNG image (*.png);;SVG drawing (*.svg);;PDF document (*.pdf)"
DIALOG = {  # key → (title, filter or the model.exporters kind whose filter to use, default file name)
    "cif": ("Export structure", "structure", "structure.cif"),
    "density": ("Export the map shown", "density", "density.cube"),
    "peaks": ("Export difference-map peaks and holes", "peaks", "peaks.csv"),
    "fit": ("Export fitted pattern", "pattern", "fit.xy"),
    "pattern_figure": ("Export pattern figure", FIGURE_FILTER, "pattern.png"),
    "density_figure": ("Export 3D view", FIGURE_FILTER, "density.png"),
    "report": ("Export solve report", "HTML report (*.html)", "report.html"),
}


def _exporters():
    # Imported on first use: model.exporters pulls in pymatgen's VASP I/O and torch, seconds of
    # start-up that the window must not wait for.
    from model import exporters

    return exporters


class ExportController:
    def __init__(self, patterns: PatternModel, solve: SolveModel, settings: SettingsModel, window: MainWindow,
                 maps: MapModel | None = None):
        self.patterns, self.solve, self.settings, self.window = patterns, solve, settings, window
        self.maps = maps if maps is not None else MapModel()
        for key, action in window.export_actions.items():
            action.triggered.connect(lambda _=False, k=key: self.export_dialog(k))

    def export_dialog(self, key: str) -> None:
        title, file_filter, name = DIALOG[key]
        if "(" not in file_filter:
            file_filter = _exporters().file_filter(file_filter)
        path, _ = QFileDialog.getSaveFileName(self.window, title, str(Path(self.settings.last_folder) / name),
                                              file_filter)
        if path:
            self.export(key, path)

    def export(self, key: str, path: str | Path) -> Path | None:
        """Write one export; a problem becomes one line in the window and None."""
        try:
            written = self._write(key, Path(path))
        except InputError as error:
            self.window.show_error(str(error))
            return None
        self.settings.last_folder = str(written.parent)
        what = f": {self.shown_map().description}" if key == "density" else ""
        self.window.show_message(f"Wrote {written}{what}")
        return written

    def export_all(self, folder: str | Path, gl: bool = True) -> tuple[list[Path], list[str]]:
        """Every export there is something for, under its dialog's default name in ``folder``
        (scripted --export); the 3D figure and the report, which shows it, only where OpenGL
        renders (``gl``). Returns the files written and the one-line problems."""
        folder = Path(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(folder, f"cannot create the export folder ({error.strerror})") from None
        pattern, result, density = self.patterns.pattern, self.solve.result, self.shown_map()
        wanted = {"cif": result is not None or self.solve.structure is not None, "density": density is not None,
                  "peaks": result is not None and bool(result.map_peaks),
                  "fit": pattern is not None, "pattern_figure": pattern is not None,
                  "density_figure": gl and density is not None, "report": gl and result is not None}
        written, problems = [], []
        for key in (key for key in DIALOG if wanted[key]):
            path = self.export(key, folder / DIALOG[key][2])
            if path is None:
                problems.append(self.window.message.text())
            else:
                written.append(path)
        return written, problems

    def shown_map(self):
        """The map the 3D view shows (model.density.Density), else the solution's density."""
        return self.maps.maps.get(self.maps.kind, self.solve.density)

    def _write(self, key: str, path: Path) -> Path:
        result, view = self.solve.result, self.window.density_view
        if key == "cif":
            structure = result if result is not None else self.solve.structure
            if structure is None:
                raise InputError(path, "no structure to export: solve first or open a CIF")
            _exporters().export(path, structure, "structure")
        elif key == "density":
            if self.shown_map() is None:
                raise InputError(path, "no density to export: solve first or open a CIF")
            _exporters().export(path, self.shown_map(), "density")
        elif key == "peaks":
            if result is None or not result.map_peaks:
                raise InputError(path, "no difference map to list peaks of: solve or refine first")
            _exporters().export(path, result.map_peaks, "peaks")
        elif key == "fit":
            data = self.patterns.fit or self.patterns.pattern
            if data is None:
                raise InputError(path, "no pattern to export")
            _exporters().export(path, data, "pattern")
        elif key == "pattern_figure":
            save_pattern_figure(self.window.pattern_widget, path)
        elif key == "density_figure":
            save_image(rgba_image(view.render()), path)
        elif key == "report":
            if result is None:
                raise InputError(path, "no solve result to report: press Solve first")
            difference = self.maps.maps.get("difference", result.maps.get("difference"))
            write_report(path, result, self.patterns.pattern, self.window.pattern_widget, view, difference,
                         (self.maps.hkl, self.maps.offset))
        else:
            raise ValueError(f"unknown export {key!r}")
        return path
