"""Solve and Refine through the job runner; results fill the pattern, the 3D view and the results panel."""

from __future__ import annotations

import dataclasses

import numpy as np

from cmedgui.app.controllers.refinement_controller import REFINE_AGAIN
from cmedgui.app.jobs import JobRunner
from cmedgui.app.models import CompositionModel, PatternModel, SettingsModel, SolveModel
from cmedgui.app.widgets.main_window import MainWindow
from model.pattern import Pattern
from model.result import Progress

SOLVE_SAMPLES = 4


def without_excluded(pattern: Pattern, keep: np.ndarray) -> Pattern:
    """The pattern with excluded points dropped (for jobs that take no excluded regions)."""
    sigma = pattern.sigma[keep] if pattern.sigma is not None else None
    return dataclasses.replace(pattern, two_theta=pattern.two_theta[keep], intensity=pattern.intensity[keep],
                               sigma=sigma)


class SolveController:
    def __init__(self, patterns: PatternModel, composition: CompositionModel, solve: SolveModel,
                 settings: SettingsModel, window: MainWindow, runner: JobRunner):
        self.patterns, self.composition, self.solve = patterns, composition, solve
        self.settings, self.window, self.runner = settings, window, runner
        window.solve_action.triggered.connect(self.start_solve)
        window.refine_action.triggered.connect(self.start_refine)
        window.cancel_action.triggered.connect(self.cancel)
        window.results_panel.solution_selected.connect(solve.set_current)
        window.device.setCurrentText(settings.device)
        window.device.currentTextChanged.connect(lambda name: setattr(settings, "device", name))
        runner.started.connect(lambda name: window.show_busy(name, 0.0))
        runner.progress.connect(self._progress)
        runner.finished.connect(self._finished)
        runner.failed.connect(self._failed)
        runner.cancelled.connect(self._cancelled)
        solve.results_changed.connect(self._show_results)
        solve.current_changed.connect(self._show_solution)
        solve.structure_changed.connect(self._structure_changed)

    # -- intents ---------------------------------------------------------------------------------
    def start_solve(self) -> None:
        pattern = self.patterns.pattern
        if pattern is None:
            self.window.show_error("Open a pattern first (File › Open or drop a file on the window)")
            return
        chemistry = self.composition
        if not chemistry.known and not chemistry.possible:
            self.window.show_error("Tick the elements in the sample first (periodic table, left)")
            return
        from model.fourier import mapped
        from model.solve import solve

        data = without_excluded(pattern, pattern.included(self.patterns.excluded))
        self.runner.submit("Solve", mapped, solve, data, chemistry.known, formula=chemistry.formula or None,
                           possible=chemistry.possible, excluded=chemistry.excluded,
                           system=self.window.crystal_system.currentText(), samples=SOLVE_SAMPLES,
                           device=self.settings.device)

    def start_refine(self) -> None:
        pattern, structure = self.patterns.pattern, self.solve.structure
        if pattern is None or structure is None:
            self.window.show_error("Refine needs a pattern and a structure: solve first or open a CIF")
            return
        from model.fourier import mapped
        from model.refine import refine_structure

        self.runner.submit("Refine", mapped, refine_structure, pattern, structure, excluded=list(self.patterns.excluded))

    def cancel(self) -> None:
        if self.runner.busy:
            self.window.show_message(f"Cancelling {self.runner.current}…")
            self.runner.cancel()

    # -- job events ------------------------------------------------------------------------------
    def _progress(self, name: str, step: Progress) -> None:
        self.window.show_busy(f"{name}: {step.stage}", step.fraction)
        if step.preview is not None:  # e.g. what the network sees in the indexed cell
            self.solve.set_density(step.preview)
        if step.message:
            self.window.show_message(f"{name}: {step.stage} — {step.message}")

    def _finished(self, name: str, value) -> None:
        if name == REFINE_AGAIN:  # the refinement controller's job: it replaces the shown solution
            return
        self.window.show_busy(None)
        results = [value, *value.alternatives]
        ranked = sorted(results, key=lambda r: (not r.solved, r.rwp))  # the solved first, best Rwp first
        best = ranked[0]
        if best.structure is None:
            self.window.show_error(f"{name}: no solution ({best.message or 'no candidate fits'})")
            return
        self.solve.set_results([r for r in ranked if r.structure is not None])
        summary = f"{best.space_group}, Rwp {best.rwp:.2f} %" + (f" — {best.message}" if best.message else "")
        if best.solved:
            self.window.show_message(f"{name} done, solved: {summary}")
        else:  # a plausible fit in a wrong group must not read as a solution
            self.window.show_error(f"{name} done, NOT solved: {summary}")

    def _failed(self, name: str, message: str) -> None:
        self.window.show_busy(None)
        self.window.show_error(f"{name} failed: {message}")

    def _cancelled(self, name: str) -> None:
        self.window.show_busy(None)
        self.window.show_message(f"{name} cancelled")

    # -- results → views -------------------------------------------------------------------------
    def _show_results(self) -> None:
        self.window.results_panel.show_results(self.solve.results, self.solve.current)

    def _show_solution(self, index: int) -> None:
        self.window.results_panel.show_results(self.solve.results, index)
        result = self.solve.result
        if result is None:
            return
        self.patterns.set_fit(result.fit, result.reflections, [(p.formula, p.reflections) for p in result.phases])
        if result.structure is None:
            self.window.show_error(f"solution {index + 1}: no refined cell to show")
            return
        self.solve.set_structure(result.structure)

    def _structure_changed(self) -> None:
        structure = self.solve.structure
        if structure is not None and self.solve.density is None:  # no network map: the one from the atoms
            from model.density import cmed  # torch and pymatgen: load on first use

            # a solution's map in the solution's own cell, the one its CIF is written in
            self.solve.set_density(cmed(structure, conventional=self.solve.result is None))
