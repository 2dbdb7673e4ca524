"""The pattern plot (pyqtgraph): observed points, calculated line, background, difference below,
hkl ticks with hkl on hover, excluded regions dragged out with Shift (or in exclude mode), the
legend above the plot, and before a fit a line saying what to do next in place of the empty
difference panel."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QSizePolicy

# Colour-blind-safe (Okabe–Ito) colours for overlaid patterns, first is the current one.
OVERLAY_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442"]
CALC_COLOUR, BG_COLOUR, DIFF_COLOUR, TICK_COLOUR = "#D55E00", "#7f7f7f", "#009E73", "#CC79A7"
EXCLUDED_BRUSH = (200, 60, 60, 50)
TICK_STRIP_PX = 28
LEGEND_COLUMNS = 2
QWIDGETSIZE_MAX = (1 << 24) - 1  # Qt's "no maximum" for a size
MAX_POINTS_DRAWN = 20_000  # observed points in view above which the observed pattern is drawn as a line

X_LABELS = {"2theta": ("2θ", "°"), "q": ("Q", "Å⁻¹"), "d": ("d", "Å")}
Y_LABELS = {"linear": "Intensity", "sqrt": "√Intensity", "log": "log₁₀ Intensity"}
# the intensity unit a reader states (metadata "intensity_unit") → the axis label's words
INTENSITY_UNITS = {"counts": "counts", "counts/s": "counts/s", "cps": "counts/s", "arbitrary": "arb. units",
                   "normalised": "normalised to its maximum"}


def decimate_min_max(x: np.ndarray, y: np.ndarray, low: float, high: float,
                     columns: int) -> tuple[np.ndarray, np.ndarray]:
    """The points of a monotonic x (either way) that a drawing of [low, high] ``columns`` pixels
    wide can show: in each pixel column its lowest and its highest point, in order, so every peak
    keeps its height. With at most 2 points a column nothing is dropped; the neighbours just
    outside the range are kept, so lines run to the edges."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    inside = np.flatnonzero((x >= low) & (x <= high))
    if inside.size <= 2 * columns or high <= low:
        return x, y
    column = np.minimum(((x[inside] - low) / (high - low) * columns).astype(int), columns - 1)
    starts = np.flatnonzero(np.r_[True, np.diff(column) != 0])  # x is monotonic: a column is a run
    values = y[inside]
    kept = {max(inside[0] - 1, 0), min(inside[-1] + 1, x.size - 1)}
    for start, end in zip(starts, np.r_[starts[1:], inside.size]):
        run = values[start:end]
        kept.update((inside[start + np.argmin(run)], inside[start + np.argmax(run)]))
    order = np.array(sorted(kept))
    return x[order], y[order]


def scale_intensity(y: np.ndarray, scaling: str) -> np.ndarray:
    """Display transform of intensities: linear, signed square root, or log10 (floored at 1e-3·max)."""
    y = np.asarray(y, dtype=float)
    if scaling == "sqrt":
        return np.sign(y) * np.sqrt(np.abs(y))
    if scaling == "log":
        floor = max(float(np.max(np.abs(y), initial=0.0)) * 1e-3, 1e-12)
        return np.log10(np.maximum(y, floor))
    return y


class _DragViewBox(pg.ViewBox):
    """A ViewBox whose Shift-drag (or any left drag in exclude mode) outlines an x range."""

    range_dragged = Signal(float, float)

    def __init__(self):
        super().__init__()
        self.exclude_mode = False
        self._band = pg.LinearRegionItem(brush=EXCLUDED_BRUSH, movable=False)
        self._band.setZValue(-5)
        self._band.hide()
        self.addItem(self._band, ignoreBounds=True)

    def mouseDragEvent(self, event, axis=None):
        wants = event.button() == Qt.MouseButton.LeftButton and (
            self.exclude_mode or event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if not wants:
            super().mouseDragEvent(event, axis)
            return
        event.accept()
        start = self.mapSceneToView(event.buttonDownScenePos()).x()
        now = self.mapSceneToView(event.scenePos()).x()
        self._band.setRegion((start, now))
        self._band.show()
        if event.isFinish():
            self._band.hide()
            self.range_dragged.emit(min(start, now), max(start, now))


class PatternWidget(pg.GraphicsLayoutWidget):
    """Draws patterns handed to it in display units; emits the user's edits of excluded regions."""

    excluded_added = Signal(float, float)  # display x units
    excluded_edited = Signal(list)  # all regions after a move/removal, display x units

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("w")
        self._viewbox = _DragViewBox()
        # rows: legend, patterns, hkl ticks, difference, what to do next (before a fit)
        self.legend = pg.LegendItem(colCount=LEGEND_COLUMNS)  # above the plot: inside it, it covers data
        # its width must not widen the plot's column past the window: long names are cut instead
        self.legend.setSizePolicy(QSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred))
        self.addItem(self.legend, row=0, col=0)
        self.main = self.addPlot(row=1, col=0, viewBox=self._viewbox)
        self.tick_plot = self.addPlot(row=2, col=0)
        self.diff = self.addPlot(row=3, col=0)
        self._hint = pg.LabelItem(justify="left", color="#505050")
        self.addItem(self._hint, row=4, col=0)
        self.ci.layout.setRowStretchFactor(1, 5)
        self.tick_plot.setMaximumHeight(TICK_STRIP_PX)
        self.tick_plot.hideAxis("bottom")
        self.tick_plot.getAxis("left").setTicks([[(0.5, "hkl")]])
        self.tick_plot.setYRange(0, 1, padding=0)
        self.tick_plot.setMouseEnabled(x=True, y=False)
        for plot in (self.tick_plot, self.diff):
            plot.setXLink(self.main)
            plot.getAxis("left").setWidth(60)
        self.main.getAxis("left").setWidth(60)
        self.main.showGrid(x=True, y=True, alpha=0.15)
        self.diff.showGrid(x=True, y=True, alpha=0.15)
        for plot in (self.main, self.diff):
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
        self.diff.setLabel("left", "Obs − Calc")
        self._viewbox.range_dragged.connect(self.excluded_added)
        self._curves: list[pg.PlotDataItem] = []
        self._calc = self.main.plot([], [], pen=pg.mkPen(CALC_COLOUR, width=1.5), name="calculated")
        self._background = self.main.plot([], [], pen=pg.mkPen(BG_COLOUR, width=1, style=Qt.PenStyle.DashLine),
                                          name="background")
        self._difference = self.diff.plot([], [], pen=pg.mkPen(DIFF_COLOUR, width=1))
        self._ticks = pg.ScatterPlotItem(symbol="|", size=14, pen=pg.mkPen(TICK_COLOUR, width=1.5),
                                         brush=None, hoverable=True, tip="{data}".format,
                                         hoverPen=pg.mkPen("k", width=2))
        self.tick_plot.addItem(self._ticks)
        self._regions: list[pg.LinearRegionItem] = []
        self._observed: tuple[pg.PlotDataItem, np.ndarray, str] | None = None
        self._decimating = False  # while a vector figure is drawn (decimated)
        self.main.sigXRangeChanged.connect(self._points_or_line)
        self.set_axes("2theta", "linear", "arbitrary")
        self.set_fit(None)

    def set_exclude_mode(self, on: bool) -> None:
        self._viewbox.exclude_mode = on

    def set_axes(self, x_unit: str, scaling: str, intensity_unit: str) -> None:
        """Axis titles: the x unit (a key of X_LABELS), the scaling and the intensity's unit (a key
        of INTENSITY_UNITS; others are shown as they are)."""
        name, unit = X_LABELS[x_unit]
        for plot in (self.main, self.diff):  # the x title sits on whichever panel is lowest
            plot.setLabel("bottom", name, units=unit)
        self.main.setLabel("left", f"{Y_LABELS[scaling]} ({INTENSITY_UNITS.get(intensity_unit, intensity_unit)})")

    def set_hint(self, text: str) -> None:
        """What to do next, below the plot where the difference panel goes after a fit ('' for none)."""
        self._hint.setText(text.replace("\n", "<br>"))
        self._hint.setVisible(bool(text))
        self.ci.layout.setRowMaximumHeight(4, QWIDGETSIZE_MAX if text else 0)

    def set_patterns(self, curves: list[tuple[str, np.ndarray, np.ndarray]], current: int) -> None:
        """(name, x, y) per pattern, already in display units; the current one is drawn on top as points."""
        for item in self._curves:
            self.main.removeItem(item)
        self._curves = []
        self._observed = None
        for index, (name, x, y) in enumerate(curves):
            colour = OVERLAY_COLOURS[index % len(OVERLAY_COLOURS)]
            if index == current:
                item = pg.PlotDataItem(x, y, pen=None, symbol="o", symbolSize=3, symbolPen=None,
                                       symbolBrush=colour, name=f"{name} (observed)")
                item.setZValue(2)
                self._observed = (item, np.asarray(x), colour)
            else:
                item = pg.PlotDataItem(x, y, pen=pg.mkPen(colour, width=1), name=name)
            self.main.addItem(item)  # takes the plot's clip-to-view and downsampling
            self._curves.append(item)
        self._points_or_line()
        self._fill_legend()

    def _fill_legend(self) -> None:
        self.legend.clear()
        for item in self._curves + [self._calc, self._background]:
            if item.xData is not None and len(item.xData):
                self.legend.addItem(item, item.name())

    def _points_or_line(self) -> None:
        """Observed points while they can be told apart; a line when thousands share the view,
        where points would look the same and cost several times more to draw on every pan."""
        if self._observed is None or self._decimating:
            return
        item, x, colour = self._observed
        (low, high), _ = self.main.viewRange()
        visible = int(np.count_nonzero((x >= low) & (x <= high)))
        as_points = visible <= MAX_POINTS_DRAWN
        if as_points != (item.opts["symbol"] is not None):
            item.setSymbol("o" if as_points else None)
            item.setPen(None if as_points else pg.mkPen(colour, width=1))

    def set_fit(self, x: np.ndarray | None, calculated=None, background=None, difference=None) -> None:
        """Calculated and background (display units, already scaled) and the unscaled difference;
        without a fit the difference panel and the tick strip are hidden (they would be empty axes)."""
        empty = np.zeros(0)
        fitted = x is not None
        if not fitted:
            x = calculated = background = difference = empty
        self._calc.setData(x, calculated)
        self._background.setData(x, background)
        self._difference.setData(x, difference)
        # a hidden item keeps its row's height in the layout: the rows are closed as well
        for row, plot, height in ((2, self.tick_plot, TICK_STRIP_PX), (3, self.diff, QWIDGETSIZE_MAX)):
            plot.setVisible(fitted)
            self.ci.layout.setRowMaximumHeight(row, height if fitted else 0)
        self.ci.layout.setRowStretchFactor(3, 2 if fitted else 0)
        self.main.showAxis("bottom", not fitted)
        self._fill_legend()

    @contextlib.contextmanager
    def decimated(self) -> Iterator[None]:
        """Within: every curve holds only the points the plot's width in pixels can show
        (decimate_min_max), and the observed points are a line where they would overlap, so a
        vector figure stays small (one pattern's SVG was 5 MB of point symbols); restored after."""
        for plot in (self.main, self.diff):
            plot.vb.updateAutoRange()  # the range the figure shows: pending until the next paint
        (low, high), _ = self.main.viewRange()
        columns = max(int(self.main.vb.width()), 1)
        items = [item for item in self._curves + [self._calc, self._background, self._difference]
                 if item.xData is not None and len(item.xData)]
        saved = [(item, item.xData, item.yData, item.opts["symbol"], item.opts["pen"], item.opts["autoDownsample"])
                 for item in items]
        # the view must not move meanwhile: a range change would turn the points back on
        auto_ranges = [(plot.vb, list(plot.vb.state["autoRange"])) for plot in (self.main, self.diff)]
        for view, _ in auto_ranges:
            view.disableAutoRange()
        self._decimating = True
        try:
            for item, x, y, symbol, *_ in saved:
                fewer_x, fewer_y = decimate_min_max(x, y, low, high, columns)
                item.setDownsampling(auto=False)  # its own bins would move the peaks to a bin's edge
                item.setData(fewer_x, fewer_y)
                if symbol is not None and np.count_nonzero((fewer_x >= low) & (fewer_x <= high)) > columns / 4:
                    item.setSymbol(None)
                    item.setPen(pg.mkPen(self._observed[2], width=1))
            yield
        finally:
            self._decimating = False
            for item, x, y, symbol, pen, auto_downsample in saved:
                item.setData(x, y)
                item.setSymbol(symbol)
                item.setPen(pen)
                item.setDownsampling(auto=auto_downsample)
            for view, (x_auto, y_auto) in auto_ranges:
                view.enableAutoRange(x=x_auto, y=y_auto)

    def set_ticks(self, x: np.ndarray, labels: list[str], rows: list[int], names: list[str] = ("hkl",)) -> None:
        """hkl ticks at display x in the strip between the panels, one row per phase (``rows``: each
        tick's index into ``names``, the rows' names); hovering one shows its label."""
        count = max(len(names), 1)
        centre = lambda row: (count - row - 0.5) / count
        self.tick_plot.setMaximumHeight(TICK_STRIP_PX * count)
        if self.tick_plot.isVisible():  # a fit is shown: its row grows with the phases
            self.ci.layout.setRowMaximumHeight(2, TICK_STRIP_PX * count)
        self.tick_plot.getAxis("left").setTicks([[(centre(n), name) for n, name in enumerate(names)]])
        self._ticks.setData(x=np.asarray(x, dtype=float), y=np.array([centre(r) for r in rows], dtype=float),
                            data=labels)

    def set_excluded(self, regions: list[tuple[float, float]]) -> None:
        for item in self._regions:
            self.main.removeItem(item)
        self._regions = []
        for low, high in regions:
            item = pg.LinearRegionItem((low, high), brush=EXCLUDED_BRUSH)
            item.setToolTip("Excluded region: drag edges to adjust, right-click to remove")
            item.sigRegionChangeFinished.connect(self._emit_regions)
            item.mouseClickEvent = lambda event, it=item: self._remove_region(event, it)
            self.main.addItem(item)
            self._regions.append(item)

    def _remove_region(self, event, item) -> None:
        if event.button() == Qt.MouseButton.RightButton:
            event.accept()
            self._regions.remove(item)
            self.main.removeItem(item)
            self._emit_regions()

    def _emit_regions(self) -> None:
        self.excluded_edited.emit([tuple(item.getRegion()) for item in self._regions])

    def reset_view(self) -> None:
        self.main.enableAutoRange()
        self.diff.enableAutoRange()
        self.tick_plot.setYRange(0, 1, padding=0)
