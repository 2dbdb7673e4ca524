"""Opening files (dialog, drop, recent list, command line) and the wavelength box."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from cmedgui.app.models import PatternModel, SettingsModel, SolveModel
from cmedgui.app.widgets.main_window import FROM_FILE, MainWindow
from cmedgui.opening import open_file
from model.errors import InputError
from model.pattern import Wavelength, parse_wavelength
from model.readers import file_filter


class FileController:
    def __init__(self, patterns: PatternModel, solve: SolveModel, settings: SettingsModel, window: MainWindow):
        self.patterns, self.solve, self.settings, self.window = patterns, solve, settings, window
        window.open_action.triggered.connect(self.open_dialog)
        window.files_dropped.connect(self.open_paths)
        window.file_list.current_selected.connect(patterns.set_current)
        window.file_list.remove_requested.connect(patterns.remove)
        window.wavelength.activated.connect(self._wavelength_chosen)
        window.wavelength.lineEdit().editingFinished.connect(self._wavelength_chosen)
        patterns.patterns_changed.connect(self._show_list)
        patterns.current_changed.connect(self._show_list)
        settings.recent_changed.connect(self._show_recent)
        self._show_recent()

    def chosen_wavelength(self) -> Wavelength | None:
        """The wavelength box: None for 'from file', else an anode or a value in Å."""
        text = self.window.wavelength.currentText().strip()
        if text == FROM_FILE or not text:
            return None
        return parse_wavelength(text.split(" (")[0])

    def fallback_wavelength(self) -> Wavelength:
        """For files that state none: the box's choice, else the one remembered from last time."""
        return self.chosen_wavelength() or parse_wavelength(self.settings.wavelength)

    def open_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self.window, "Open patterns or structures",
                                                self.settings.last_folder,
                                                file_filter())
        if paths:
            self.open_paths(paths)

    def open_paths(self, paths: list[str]) -> int:
        """Open each file; the first problem is shown as one line. Returns the patterns added."""
        added, errors, notes = 0, [], []
        for path in paths:
            try:
                added += self._open(path, notes)
            except InputError as error:
                errors.append(str(error))
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            self.window.show_error(errors[0] + more)
        elif added:
            self.window.show_message("; ".join([f"Opened {', '.join(Path(p).name for p in paths)}", *notes]))
        return added

    def _open(self, path: str, notes: list[str]) -> int:
        chosen = self.chosen_wavelength()
        if chosen is not None:
            self._remember(chosen)
        opened = open_file(path, chosen)
        patterns = opened.patterns
        if any(p.wavelength is None for p in patterns):
            fallback = self.fallback_wavelength()
            patterns = [p if p.wavelength else p.with_wavelength(fallback) for p in patterns]
            notes.append(f"{Path(path).name} states no wavelength: using {fallback.label or f'{fallback.ka1} Å'}"
                         " (change it in the Wavelength box)")
        self.patterns.add(patterns)
        self.settings.add_recent(path)
        if opened.structure is not None:
            self.solve.clear()
            self.solve.set_structure(opened.structure)
        return len(patterns)

    def _wavelength_chosen(self) -> None:
        try:
            wavelength = self.chosen_wavelength()
        except InputError as error:
            self.window.show_error(str(error))
            return
        if wavelength is not None:
            self._remember(wavelength)
            self.patterns.set_wavelength(wavelength)

    def _remember(self, wavelength: Wavelength) -> None:
        self.settings.wavelength = wavelength.label or str(wavelength.ka1)

    def _show_list(self) -> None:
        names = [p.name for p in self.patterns.patterns]
        tips = [f"{p.provenance.path or p.name}\n{p.provenance.format}, {len(p)} points, "
                f"2θ {p.two_theta[0]:.2f}–{p.two_theta[-1]:.2f}°, "
                + (f"λ {p.wavelength.ka1:.5f} Å" if p.wavelength else "no wavelength")
                for p in self.patterns.patterns]
        self.window.file_list.show_patterns(names, tips, self.patterns.current)
        current = self.patterns.pattern
        self.window.setWindowTitle(f"{current.name} — cmedgui" if current else "cmedgui")

    def _show_recent(self) -> None:
        for action in self.window.set_recent(self.settings.recent):
            path = action.text()
            action.triggered.connect(lambda _=False, p=path: self.open_paths([p]))
