"""The shown solution's refinement → the parameter panel; its tick boxes → the free groups;
Refine again through the job runner with those groups, the result replacing the shown solution."""

from __future__ import annotations

from cmedgui.app.jobs import JobRunner
from cmedgui.app.models import PatternModel, SolveModel
from cmedgui.app.models.refinement_model import GROUPS, RefinementModel
from cmedgui.app.widgets.main_window import MainWindow

REFINE_AGAIN = "Refine again"  # the job's name


class RefinementController:
    def __init__(self, model: RefinementModel, patterns: PatternModel, solve: SolveModel, window: MainWindow,
                 runner: JobRunner):
        self.model, self.patterns, self.solve, self.window, self.runner = model, patterns, solve, window, runner
        panel = window.parameter_panel
        solve.current_changed.connect(lambda _: model.set_result(solve.result))
        solve.results_changed.connect(lambda: model.set_result(solve.result))
        model.parameters_changed.connect(self._draw)
        model.free_changed.connect(lambda: panel.show_free(model.free))
        panel.group_toggled.connect(model.set_free)
        panel.refine_again_clicked.connect(self.refine_again)
        runner.finished.connect(self._finished)

    def refine_again(self) -> None:
        pattern, result = self.patterns.pattern, self.model.result
        if pattern is None or result is None or result.refinement is None:
            self.window.show_error("Refine again needs a refined solution: Solve or Refine first")
            return
        if not self.model.free:
            self.window.show_error("Tick at least one group of parameters to refine")
            return
        if self.runner.busy:
            self.window.show_error(f"{self.runner.current} is still running")
            return
        from model.fourier import mapped  # torch: load on first use
        from model.refine_again import refine_again

        self.runner.submit(REFINE_AGAIN, mapped, refine_again, pattern, result, self.model.free_groups,
                           list(self.patterns.excluded))

    def _finished(self, name: str, value) -> None:
        if name != REFINE_AGAIN:
            return
        self.window.show_busy(None)
        free = self.model.free_groups
        self.solve.replace_current(value)
        self.model.restore_free(free)  # the user's ticks stay for the next round
        self.window.show_message(f"{name} ({', '.join(free)}): Rwp {value.rwp:.2f} %, GoF {value.gof:.2f}")

    def _draw(self) -> None:
        model, result = self.model, self.model.result
        groups = [(group, GROUPS[group], model.rows(group)) for group in model.groups]
        if result is not None and result.refinement is not None:
            from model.agreement import agreement_text

            text = "\n".join(agreement_text(result))
        else:
            text = ""
        self.window.parameter_panel.show_parameters(groups, model.free, text)
