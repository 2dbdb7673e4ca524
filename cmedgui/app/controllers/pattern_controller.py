"""PatternModel → PatternWidget (unit conversion, scaling) and the plot's edits back to the model."""

from __future__ import annotations

import numpy as np

from cmedgui.app.models.pattern_model import PatternModel, from_x, to_x
from cmedgui.app.widgets.main_window import MainWindow
from cmedgui.app.widgets.pattern_widget import scale_intensity

NEXT_STEP = {  # the plot's line saying what to do next, before there is a fit to show
    "no pattern": "Open a powder pattern: drop a file here, or File › Open (Ctrl+O)",
    "no fit": "Next: tick the elements in the sample (left), then Solve (Ctrl+R).\n"
              "With a structure CIF open, Refine fits it to the pattern.",
}


class PatternController:
    def __init__(self, model: PatternModel, window: MainWindow):
        self.model, self.window, self.widget = model, window, window.pattern_widget
        model.patterns_changed.connect(self.redraw)
        model.current_changed.connect(self.redraw)
        model.x_unit_changed.connect(self._axes_changed)
        model.scaling_changed.connect(self._axes_changed)
        model.stacking_changed.connect(self._axes_changed)
        model.excluded_changed.connect(self._draw_excluded)
        model.fit_changed.connect(self._draw_fit)
        self.widget.excluded_added.connect(self._excluded_added)
        self.widget.excluded_edited.connect(self._excluded_edited)
        for unit, action in window.x_unit_actions.items():
            action.triggered.connect(lambda _=False, u=unit: self.set_x_unit(u))
        for scaling, action in window.scaling_actions.items():
            action.triggered.connect(lambda _=False, s=scaling: model.set_scaling(s))
        for offset, action in window.offset_actions.items():
            action.triggered.connect(lambda _=False, o=offset: model.set_offset(o))
        window.normalise_action.toggled.connect(model.set_normalised)
        window.exclude_action.toggled.connect(self.widget.set_exclude_mode)
        window.reset_action.triggered.connect(self.widget.reset_view)
        model.x_unit_changed.connect(lambda u: window.x_unit_actions[u].setChecked(True))
        model.scaling_changed.connect(lambda s: window.scaling_actions[s].setChecked(True))

    def set_x_unit(self, unit: str) -> None:
        """Q and d need the wavelength of every pattern shown; say so instead of switching."""
        missing = [p.name for p in self.model.patterns if p.wavelength is None]
        if unit != "2theta" and missing:
            self.window.show_error(f"{missing[0]}: no wavelength known, so Q and d cannot be shown; "
                                   "choose one in the Wavelength box")
            self.window.x_unit_actions[self.model.x_unit].setChecked(True)
            return
        self.model.set_x_unit(unit)

    def _wavelength(self) -> float | None:
        pattern = self.model.pattern
        return pattern.wavelength.ka1 if pattern is not None and pattern.wavelength else None

    def _x(self, two_theta: np.ndarray, wavelength_A: float | None) -> np.ndarray:
        return to_x(two_theta, self.model.x_unit, wavelength_A)

    def _axes_changed(self) -> None:
        self.redraw()
        self.widget.reset_view()

    def _stacking(self) -> list[tuple[float, float]]:
        """(factor, shift) per pattern: display y = scaled(intensity × factor) + shift. The factor
        normalises to the pattern's maximum where chosen; the shift stacks the patterns by the
        offset × the tallest one's displayed height."""
        model = self.model
        factors = [1.0 / max(float(np.max(np.abs(p.intensity))), np.finfo(float).tiny) if model.normalised else 1.0
                   for p in model.patterns]
        heights = [np.ptp(scale_intensity(p.intensity * f, model.scaling)) for p, f in zip(model.patterns, factors)]
        step = model.offset * max(heights, default=0.0)
        return [(factor, index * step) for index, factor in enumerate(factors)]

    def redraw(self) -> None:
        model = self.model
        if model.x_unit != "2theta" and any(p.wavelength is None for p in model.patterns):
            model.set_x_unit("2theta")  # a pattern without wavelength arrived: Q/d are undefined
            return
        self.widget.set_axes(model.x_unit, model.scaling, model.intensity_unit())
        curves = []
        for pattern, (factor, shift) in zip(model.patterns, self._stacking()):
            wavelength = pattern.wavelength.ka1 if pattern.wavelength else None
            curves.append((pattern.name, self._x(pattern.two_theta, wavelength),
                           scale_intensity(pattern.intensity * factor, model.scaling) + shift))
        self.widget.set_patterns(curves, model.current)
        self._draw_excluded()
        self._draw_fit()

    def _draw_fit(self) -> None:
        fit, lam = self.model.fit, self._wavelength()
        if fit is None:
            self.widget.set_fit(None)
            self.widget.set_ticks(np.zeros(0), [], [])
            self.widget.set_hint(NEXT_STEP["no pattern" if self.model.pattern is None else "no fit"])
            return
        self.widget.set_hint("")
        scaling = self.model.scaling
        factor, shift = self._stacking()[self.model.current]
        self.widget.set_fit(self._x(fit.two_theta, lam), scale_intensity(fit.calculated * factor, scaling) + shift,
                            scale_intensity(fit.background * factor, scaling) + shift, fit.difference * factor)
        rows = self.model.tick_rows
        reflections = [(n, r) for n, (_, phase) in enumerate(rows) for r in phase]
        positions = self._x(np.array([r.two_theta for _, r in reflections]), lam)
        labels = [f"{rows[n][0] + '  ' if len(rows) > 1 else ''}({h} {k} {l})  2θ {r.two_theta:.3f}°  d {r.d:.4f} Å"
                  for n, r in reflections for h, k, l in [r.hkl]]
        self.widget.set_ticks(positions, labels, [n for n, _ in reflections], [name for name, _ in rows])

    def _draw_excluded(self) -> None:
        lam = self._wavelength()
        self.widget.set_excluded([tuple(sorted(self._x(np.array(r), lam))) for r in self.model.excluded])

    def _to_two_theta(self, low: float, high: float) -> tuple[float, float]:
        values = from_x(np.array([low, high]), self.model.x_unit, self._wavelength())
        return float(np.nanmin(values)), float(np.nanmax(values))

    def _excluded_added(self, low: float, high: float) -> None:
        if self.model.pattern is not None:
            self.model.add_excluded(*self._to_two_theta(low, high))

    def _excluded_edited(self, regions: list) -> None:
        self.model.set_excluded([self._to_two_theta(*r) for r in regions])
