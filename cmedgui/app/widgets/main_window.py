"""The main window's layout, menus and status bar; files dropped on it are emitted as paths."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cmedgui.app.models.pattern_model import OFFSETS
from cmedgui.app.widgets.density_view import DensityView
from cmedgui.app.widgets.file_list import FileList
from cmedgui.app.widgets.parameter_panel import ParameterPanel
from cmedgui.app.widgets.pattern_widget import PatternWidget
from cmedgui.app.widgets.periodic_table import PeriodicTable
from cmedgui.app.widgets.results_panel import ResultsPanel
from cmedgui.app.widgets.slice_view import SliceView
from model.data.systems import SOLVE_CHOICES
from model.pattern import ANODES

ICONS = Path(__file__).resolve().parents[3] / "resources" / "icons"
FROM_FILE = "from file"
DEVICES = ("auto", "cpu", "cuda")
PROGRESS_PADDING_PX = 40  # the progress bar's frame and chunk margins around its text


def icon(name: str) -> QIcon:
    return QIcon(str(ICONS / f"{name}.svg"))


class MainWindow(QMainWindow):
    files_dropped = Signal(list)  # paths as str
    closing = Signal()

    def __init__(self):
        super().__init__()
        self.setWindowTitle("cmedgui — crystal structures from powder diffraction")
        self.setWindowIcon(icon("cmedgui"))
        self.setAcceptDrops(True)
        self.resize(1560, 960)

        self.pattern_widget = PatternWidget()
        self.density_view = DensityView()
        self.slice_view = SliceView()
        self.file_list = FileList()
        self.periodic_table = PeriodicTable()
        self.results_panel = ResultsPanel()
        self.parameter_panel = ParameterPanel()

        self.wavelength = QComboBox()
        self.wavelength.setEditable(True)
        self.wavelength.addItems([FROM_FILE, *(f"{name} ({w.ka1:.5f} Å)" for name, w in ANODES.items())])
        self.wavelength.setToolTip("Used when the file states no wavelength: an anode or a value in Å")
        self.crystal_system = QComboBox()
        self.crystal_system.addItems(SOLVE_CHOICES)
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.device.setToolTip("Where the network runs: auto picks CUDA when there is a GPU")
        self.solve_button = QPushButton(icon("solve"), "Solve")
        self.refine_button = QPushButton("Refine")
        sample = QWidget()
        form = QFormLayout(sample)
        form.addRow("Wavelength", self.wavelength)
        form.addRow("Crystal system", self.crystal_system)
        form.addRow("Device", self.device)
        buttons = QHBoxLayout()
        buttons.addWidget(self.solve_button)
        buttons.addWidget(self.refine_button)
        form.addRow(buttons)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(2, 2, 2, 2)
        left_layout.addWidget(QLabel("Patterns (drop files here)"))
        left_layout.addWidget(self.file_list, 1)
        left_layout.addWidget(self.periodic_table)
        left_layout.addWidget(sample)
        self._dock("Sample", left, Qt.DockWidgetArea.LeftDockWidgetArea)
        results = self._dock("Results", self.results_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        results.setMaximumWidth(380)
        refinement = self._dock("Refinement", self.parameter_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        refinement.setMaximumWidth(380)

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.pattern_widget)
        self.maps_splitter = QSplitter(Qt.Orientation.Horizontal)  # the 3D view and its slice side by side
        self.maps_splitter.addWidget(self.density_view)
        self.maps_splitter.addWidget(self.slice_view)
        self.maps_splitter.setSizes([600, 400])
        self.splitter.addWidget(self.maps_splitter)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self.setCentralWidget(self.splitter)

        self.message = QLabel()
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("%p%")
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        self.device_label = QLabel()
        status = self.statusBar()
        status.addWidget(self.message, 1)
        status.addPermanentWidget(self.progress)
        status.addPermanentWidget(self.cancel_button)
        status.addPermanentWidget(self.device_label)
        self._build_menus()

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title)
        dock.setObjectName(f"dock_{title}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.open_action = file_menu.addAction(icon("open"), "&Open…")
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        file_menu.addSeparator()
        self.open_session_action = file_menu.addAction("Open &session…")
        self.save_session_action = file_menu.addAction("&Save session…")
        self.save_session_action.setShortcut(QKeySequence.StandardKey.Save)
        file_menu.addSeparator()
        export = file_menu.addMenu("&Export")
        self.export_actions: dict[str, QAction] = {}
        for key, text in (("cif", "Structure (CIF)…"), ("density", "Map shown (.cube / .xsf / CHGCAR)…"),
                          ("peaks", "Difference-map peaks (CSV)…"), ("fit", "Fitted pattern (.xy / .csv)…"), ("pattern_figure", "Pattern figure…"),
                          ("density_figure", "3D view figure…"), ("report", "Solve report…")):
            self.export_actions[key] = export.addAction(text)
        file_menu.addSeparator()
        self.quit_action = file_menu.addAction("&Quit")
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.triggered.connect(self.close)

        view = bar.addMenu("&View")
        self.x_unit_actions = self._choice(view, {"2theta": "2θ (°)", "q": "Q (Å⁻¹)", "d": "d (Å)"})
        view.addSeparator()
        self.scaling_actions = self._choice(view, {"linear": "Linear intensity", "sqrt": "√ intensity",
                                                   "log": "Log intensity"})
        view.addSeparator()
        self.normalise_action = view.addAction("Normalise patterns to their maximum")
        self.normalise_action.setCheckable(True)
        offset_menu = view.addMenu("Offset patterns")
        self.offset_actions = self._choice(offset_menu, {offset: "None" if offset == 0 else f"{offset:.0%} of the tallest"
                                                         for offset in OFFSETS})
        view.addSeparator()
        self.exclude_action = view.addAction("Drag to exclude regions (or Shift-drag)")
        self.exclude_action.setCheckable(True)
        self.reset_action = view.addAction("Reset view")
        self.reset_action.setShortcut("Ctrl+0")

        solve = bar.addMenu("&Solve")
        self.solve_action = solve.addAction(icon("solve"), "Solve")
        self.solve_action.setShortcut("Ctrl+R")
        self.refine_action = solve.addAction("Refine")
        self.cancel_action = solve.addAction("Cancel")
        self.cancel_action.setShortcut("Esc")
        self.solve_button.clicked.connect(self.solve_action.trigger)
        self.refine_button.clicked.connect(self.refine_action.trigger)
        self.cancel_button.clicked.connect(self.cancel_action.trigger)

        help_menu = bar.addMenu("&Help")
        self.about_action = help_menu.addAction("&About cmedgui")

        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("toolbar_main")
        toolbar.addAction(self.open_action)
        toolbar.addAction(self.solve_action)
        toolbar.addAction(self.reset_action)

    def _choice(self, menu: QMenu, options: dict) -> dict[object, QAction]:
        group = QActionGroup(self)
        actions = {}
        for key, text in options.items():
            action = menu.addAction(text)
            action.setCheckable(True)
            group.addAction(action)
            actions[key] = action
        next(iter(actions.values())).setChecked(True)
        return actions

    # -- status ----------------------------------------------------------------------------------
    def show_message(self, text: str) -> None:
        self.message.setStyleSheet("")
        self.message.setText(text)

    def show_error(self, text: str) -> None:
        """One plain line (file and problem) in the status bar: never a traceback box."""
        self.message.setStyleSheet("color: #b00020;")
        self.message.setText(text.splitlines()[0] if text else "")

    def show_busy(self, stage: str | None, fraction: float = 0.0) -> None:
        """A running job's stage and fraction (0–1); None hides the progress bar."""
        running = stage is not None
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self.solve_action.setEnabled(not running)
        self.refine_action.setEnabled(not running)
        self.solve_button.setEnabled(not running)
        self.refine_button.setEnabled(not running)
        if running:
            self.progress.setValue(round(fraction * 1000))
            self.progress.setFormat(f"{stage} %p%")
            # as wide as its longest text, so that it never clips ("Solve: index 5%")
            widest = self.progress.fontMetrics().horizontalAdvance(f"{stage} 100%")
            self.progress.setMinimumWidth(max(self.progress.minimumWidth(), widest + PROGRESS_PADDING_PX))

    def show_about(self, rich_text: str) -> QMessageBox:
        """The About box, not modal (scripted runs and tests go on)."""
        box = QMessageBox(QMessageBox.Icon.NoIcon, "About cmedgui", rich_text, QMessageBox.StandardButton.Close, self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        box.setIconPixmap(self.windowIcon().pixmap(64, 64))
        box.open()
        return box

    def set_recent(self, paths: list[str]) -> list[QAction]:
        self.recent_menu.clear()
        actions = [self.recent_menu.addAction(path) for path in paths]
        self.recent_menu.setEnabled(bool(paths))
        return actions

    def closeEvent(self, event):
        self.closing.emit()
        event.accept()

    # -- drag and drop ---------------------------------------------------------------------------
    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event):
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.files_dropped.emit(paths)
