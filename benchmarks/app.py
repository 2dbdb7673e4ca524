"""App speed figures: cold start to a shown window, isosurface re-level at 64³, pan/zoom frame
time of a 100k-point pattern. Run under a display (e.g. xvfb-run -a python benchmarks/app.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# Widgets live until exit: PySide 6.12 crashed (none_dealloc) collecting a shown plot mid-run.
KEEP_ALIVE: list = []
START_PROBE = """
import sys, time
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
import cmedgui.app.main as main
app = QApplication(sys.argv[:1])
shown = []
QTimer.singleShot(0, lambda: (shown.append(time.time()), app.quit()))
window = main.App()
window.files.open_paths([str(main.EXAMPLE)])
window.window.show()
app.exec()
print(shown[0])
"""


def cold_start_s(runs: int = 3) -> list[float]:
    """Process launch → first event-loop turn after show(), with the example opened."""
    times = []
    for _ in range(runs):
        began = time.time()
        out = subprocess.run([sys.executable, "-c", START_PROBE], cwd=REPO, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)}, check=True).stdout
        times.append(float(out.strip().splitlines()[-1]) - began)
    return times


def relevel_ms(view, repeats: int = 20) -> list[float]:
    n = 64
    x = np.arange(n) / n
    X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
    values = sum(np.exp(-((X - a) ** 2 + (Y - b) ** 2 + (Z - c) ** 2) / 0.004)
                 for a, b, c in [(0, 0, 0), (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.5), (0.25, 0.25, 0.25)])
    view.set_density(values.astype(np.float32), np.diag([5.4, 5.4, 5.4]))
    view.canvas.render()
    times = []
    for i in range(repeats):
        began = time.perf_counter()
        view.set_level_fraction(0.05 + 0.4 * (i % 10) / 10)
        view.canvas.render()  # includes uploading and drawing the new mesh
        times.append(1000 * (time.perf_counter() - began))
    return times


def pan_zoom_frame_ms(app, points: int = 100_000, frames: int = 60) -> list[float]:
    """Frame times of a pan/zoom sequence; points=0 gives the empty plot's (the redraw floor)."""
    from cmedgui.app.widgets.pattern_widget import PatternWidget

    widget = PatternWidget()
    KEEP_ALIVE.append(widget)
    widget.resize(1200, 700)
    widget.show()
    if points:
        x = np.linspace(5, 120, points)
        y = 1000 * np.exp(-((x[:, None] - np.linspace(10, 115, 200)) / 0.05) ** 2).sum(axis=1) + 50
        widget.set_patterns([("100k", x, np.random.default_rng(0).poisson(y).astype(float))], 0)
    app.processEvents()
    times = []
    for i in range(frames):
        centre = 20 + 80 * i / frames
        width = 100 / (1 + i % 20)
        began = time.perf_counter()
        widget.main.setXRange(centre - width / 2, centre + width / 2, padding=0)
        widget.repaint()
        app.processEvents()
        times.append(1000 * (time.perf_counter() - began))
    return times


def main() -> None:
    from PySide6.QtWidgets import QApplication

    from cmedgui.app.widgets.density_view import DensityView

    starts = cold_start_s()
    print(f"cold start to shown window: median {np.median(starts):.2f} s (runs {', '.join(f'{t:.2f}' for t in starts)})")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    view = DensityView()
    view.resize(600, 500)
    view.show()
    app.processEvents()
    level = relevel_ms(view)
    print(f"isosurface re-level at 64³ (mesh + render): median {np.median(level):.1f} ms, max {max(level):.1f} ms")
    for points in (0, 100_000):
        frames = pan_zoom_frame_ms(app, points)
        print(f"pan/zoom, {points or 'empty plot, no'} points: median frame {np.median(frames):.1f} ms, "
              f"95th percentile {np.percentile(frames, 95):.1f} ms")


if __name__ == "__main__":
    main()
