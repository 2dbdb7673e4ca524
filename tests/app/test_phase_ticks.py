"""The pattern view draws one tick row per phase of a mixture, named after the phase."""

import numpy as np

from cmedgui.app.main import EXAMPLE
from model.result import Fit, Reflection


def test_each_phase_gets_its_own_named_tick_row(app):
    app.files.open_paths([str(EXAMPLE)])
    x = np.linspace(10, 90, 400)
    fit = Fit(x, np.ones_like(x), np.ones_like(x), np.zeros_like(x))
    main = [Reflection((1, 0, 0), 15.3, 5.79), Reflection((1, 1, 0), 21.7, 4.1)]
    silicon = [Reflection((1, 1, 1), 28.44, 3.1356)]
    app.patterns.set_fit(fit, main, [("Si", silicon)])
    widget = app.window.pattern_widget
    heights = [float(y) for y in widget._ticks.data["y"]]
    assert len(heights) == 3 and heights[0] == heights[1] > heights[2]  # the main phase on top
    assert "Si" in widget._ticks.data["data"][2]
    names = [name for _, name in widget.tick_plot.getAxis("left")._tickLevels[0]]
    assert names == ["main", "Si"]
    app.patterns.set_fit(fit, main)
    assert [name for _, name in widget.tick_plot.getAxis("left")._tickLevels[0]] == ["hkl"]
    assert len(widget._ticks.data) == 2
