"""PatternModel → PatternWidget (unit conversion, scaling) and the plot's edits back to the model."""

from __future__ import annotations

import numpy as np

from cmedgui.app.models.pattern_model import PatternModel, from_x, to_x
from cmedgui.app.widgets.main_window import MainWindow
from cmedgui.app.widgets.pattern_widget import scale_intensity


class PatternController:
    def __init__(self, model: PatternModel, window: MainWindow):
        self.model, self.window, self.widget = model, window, window.pattern_widget
        model.patterns_changed.connect(self.redraw)
        model.current_changed.connect(self.redraw)
        model.x_unit_changed.connect(self._axes_changed)
        model.scaling_changed.connect(self._axes_changed)
        model.excluded_changed.connect(self._draw_excluded)
        model.fit_changed.connect(self._draw_fit)
        self.widget.excluded_added.connect(self._excluded_added)
        self.widget.excluded_edited.connect(self._excluded_edited)
        for unit, action in window.x_unit_actions.items():
            action.triggered.connect(lambda _=False, u=unit: self.set_x_unit(u))
        for scaling, action in window.scaling_actions.items():
            action.triggered.connect(lambda _=False, s=scaling: model.set_scaling(s))
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
        self.widget.set_axes(self.model.x_unit, self.model.scaling)
        self.redraw()
        self.widget.reset_view()

    def redraw(self) -> None:
        model = self.model
        if model.x_unit != "2theta" and any(p.wavelength is None for p in model.patterns):
            model.set_x_unit("2theta")  # a pattern without wavelength arrived: Q/d are undefined
            return
        curves = []
        for pattern in model.patterns:
            wavelength = pattern.wavelength.ka1 if pattern.wavelength else None
            curves.append((pattern.name, self._x(pattern.two_theta, wavelength),
                           scale_intensity(pattern.intensity, model.scaling)))
        self.widget.set_patterns(curves, model.current)
        self._draw_excluded()
        self._draw_fit()

    def _draw_fit(self) -> None:
        fit, lam = self.model.fit, self._wavelength()
        if fit is None:
            self.widget.set_fit(None)
            self.widget.set_ticks(np.zeros(0), [])
            return
        scaling = self.model.scaling
        self.widget.set_fit(self._x(fit.two_theta, lam), scale_intensity(fit.calculated, scaling),
                            scale_intensity(fit.background, scaling), fit.difference)
        reflections = self.model.reflections
        positions = self._x(np.array([r.two_theta for r in reflections]), lam)
        labels = [f"({h} {k} {l})  2θ {r.two_theta:.3f}°  d {r.d:.4f} Å" for r in reflections
                  for h, k, l in [r.hkl]]
        self.widget.set_ticks(positions, labels)

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
