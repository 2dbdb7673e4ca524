"""A slice of the map as a 2D contour plot (pyqtgraph), as VESTA and GSAS-II draw it: the chosen
plane's contour lines (a difference map's + and − in green and red), the atoms in the plane, and
the plane's mesh outline; the plane is (hkl) at a height, chosen below the plot."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

PLANES = ("0 0 1", "0 1 0", "1 0 0", "1 1 0", "1 0 1", "0 1 1", "1 1 1")
LINE_COLOURS = {"density": (20, 60, 160), "plus": (20, 150, 40), "minus": (200, 30, 30)}


def parse_hkl(text: str) -> tuple[int, int, int] | None:
    """"1 1 0", "110" or "(1,-1,0)" → (h, k, l); None when it is not three integers, not all 0."""
    cleaned = text.strip().strip("()[]").replace(",", " ")
    parts = cleaned.split()
    if len(parts) == 1 and len(parts[0]) == 3 and parts[0].isdigit():
        parts = list(parts[0])
    try:
        hkl = tuple(int(p) for p in parts)
    except ValueError:
        return None
    return hkl if len(hkl) == 3 and any(hkl) else None


def joined(lines: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Polylines as one x, y pair with NaN breaks (one curve item draws them all)."""
    if not lines:
        return np.zeros(0), np.zeros(0)
    gap = np.full((1, 2), np.nan)
    points = np.concatenate([part for line in lines for part in (line, gap)])
    return points[:, 0], points[:, 1]


class SliceView(QWidget):
    plane_chosen = Signal(tuple, float)  # (h, k, l), height as a fraction of d(hkl)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setAspectLocked(True)
        self.plot.setLabel("bottom", "along u (Å)")
        self.plot.setLabel("left", "along v (Å)")
        self.outline = self.plot.plot(pen=pg.mkPen((90, 90, 90), width=1.5))
        self.density = self.plot.plot(pen=pg.mkPen(LINE_COLOURS["density"], width=1), connect="finite")
        self.plus = self.plot.plot(pen=pg.mkPen(LINE_COLOURS["plus"], width=1.2), connect="finite")
        self.minus = self.plot.plot(pen=pg.mkPen(LINE_COLOURS["minus"], width=1.2, style=Qt.PenStyle.DashLine),
                                    connect="finite")
        self.atoms = pg.ScatterPlotItem(size=9, pen=pg.mkPen("k"), brush=pg.mkBrush(255, 255, 255, 160))
        self.plot.addItem(self.atoms)
        self._labels: list[pg.TextItem] = []
        self.plane = QComboBox()
        self.plane.setEditable(True)
        self.plane.addItems(PLANES)
        self.plane.setToolTip("Miller indices h k l of the plane (type any, e.g. 2 1 0)")
        self.height = QDoubleSpinBox()
        self.height.setRange(0.0, 0.99)
        self.height.setSingleStep(0.05)
        self.height.setDecimals(3)
        self.height.setToolTip("Height of the plane along its normal, as a fraction of d(hkl): "
                               "0 goes through the origin")
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.plane.activated.connect(self._chosen)
        self.plane.lineEdit().editingFinished.connect(self._chosen)
        self.height.valueChanged.connect(self._chosen)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Plane (hkl)"))
        controls.addWidget(self.plane, 1)
        controls.addWidget(QLabel("height"))
        controls.addWidget(self.height)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 1)
        layout.addLayout(controls)
        layout.addWidget(self.caption)

    def _chosen(self, *_) -> None:
        hkl = parse_hkl(self.plane.currentText())
        if hkl is not None:
            self.plane_chosen.emit(hkl, self.height.value())

    def show_plane(self, hkl: tuple[int, int, int], height: float) -> None:
        """The plane the model holds, in the controls (without re-emitting it)."""
        for widget in (self.plane, self.height):
            widget.blockSignals(True)
        self.plane.setEditText(" ".join(str(x) for x in hkl))
        self.height.setValue(height)
        for widget in (self.plane, self.height):
            widget.blockSignals(False)

    def show_slice(self, lines: list[tuple[float, np.ndarray]], frame: np.ndarray | None, signed: bool,
                   atoms: list[tuple[float, float, str]], caption: str) -> None:
        """Contour polylines (level, (M, 2) Å) on the mesh spanned by ``frame`` rows u, v (Å; None:
        nothing to show), the atoms in the plane as (x, y, label), and a line of words under it."""
        positive = [line for level, line in lines if level >= 0]
        negative = [line for level, line in lines if level < 0]
        self.density.setData(*joined([] if signed else positive))
        self.plus.setData(*joined(positive if signed else []))
        self.minus.setData(*joined(negative))
        if frame is None:
            self.outline.setData([], [])
        else:
            corners = np.array([[0, 0], frame[0], frame[0] + frame[1], frame[1], [0, 0]])
            self.outline.setData(corners[:, 0], corners[:, 1])
        for label in self._labels:
            self.plot.removeItem(label)
        self._labels = []
        self.atoms.setData([a[0] for a in atoms], [a[1] for a in atoms])
        for x, y, text in atoms:
            label = pg.TextItem(text, color=(0, 0, 0), anchor=(-0.1, 1.1))
            label.setPos(x, y)
            self.plot.addItem(label)
            self._labels.append(label)
        self.caption.setText(caption)
        self.plot.autoRange()

    def contour_count(self) -> tuple[int, int]:
        """How many polyline points are drawn above and below zero (for checks and tests)."""
        above = sum(np.count_nonzero(np.isfinite(item.getData()[0] if item.getData()[0] is not None else []))
                    for item in (self.density, self.plus))
        below = self.minus.getData()[0]
        return above, int(np.count_nonzero(np.isfinite(below))) if below is not None else 0
