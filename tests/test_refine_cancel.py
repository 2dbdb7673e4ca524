"""Cancel of a refinement: the fit yields between model evaluations and closing it stops the work."""

import threading

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from model.instrument import Instrument
from model.lockstep import lockstep
from model.pattern import ANODES
from model.refine import Rietveld, refine_structure
from model.simulate import simulate_pattern


@pytest.fixture(scope="module")
def case():
    structure = Structure.from_spacegroup("P4/mmm", Lattice.tetragonal(3.9, 6.1), ["Ba", "Ti", "O", "O"],
                                          [[0, 0, 0], [0.5, 0.5, 0.0], [0.5, 0.5, 0.31], [0.0, 0.5, 0.22]])
    return simulate_pattern(structure, Instrument(ANODES["CuKa"]), np.arange(15, 80, 0.03)), structure


def _counted(problem: Rietveld) -> list[int]:
    """Count the problem's model evaluations (a phase's Bragg profile: one per residual of this
    one-phase problem and per Jacobian column)."""
    calls = [0]
    bragg = problem.model.bragg

    def counting(*args):
        calls[0] += 1
        return bragg(*args)

    problem.model.bragg = counting
    return calls


def _lockstep_threads() -> int:
    return sum(t.name == "lockstep" for t in threading.enumerate())


def test_fit_yields_between_every_model_evaluation_and_keeps_its_result(case):
    pattern, structure = case
    problem = Rietveld(pattern, structure)
    calls = _counted(problem)
    seen, gaps = 0, []
    for _ in problem.fit(max_nfev=10, report_s=0.0):
        gaps.append(calls[0] - seen)
        seen = calls[0]
    assert calls[0] > 30  # Jacobian columns included: each is a model evaluation
    assert max(gaps) <= 1
    quiet = Rietveld(pattern, structure)
    for _ in quiet.fit(max_nfev=10):
        pass
    assert np.array_equal(problem.p, quiet.p)  # yielding does not change the optimiser's path


def test_closing_the_fit_stops_its_evaluations(case):
    pattern, structure = case
    problem = Rietveld(pattern, structure)
    calls = _counted(problem)
    fit = problem.fit(report_s=0.0)
    for _ in range(5):
        next(fit)
    fit.close()
    stopped_at = calls[0]
    assert stopped_at <= 5 and _lockstep_threads() == 0
    for _ in Rietveld(pattern, structure).fit(max_nfev=2):
        pass  # other work afterwards: the closed fit stays stopped
    assert calls[0] == stopped_at


def test_refine_structure_closes_inside_a_stage(case):
    pattern, structure = case
    job = refine_structure(pattern, structure)
    while not next(job).message.startswith("stage"):
        pass
    job.close()
    assert _lockstep_threads() == 0


def test_lockstep_returns_and_raises_like_the_direct_call():
    def work(pause):
        pause()
        pause()
        return 7

    steps = lockstep(work)
    assert next(steps) is None and next(steps) is None
    with pytest.raises(StopIteration) as stop:
        next(steps)
    assert stop.value.value == 7

    def failing(pause):
        pause()
        raise ValueError("bad")

    steps = lockstep(failing)
    next(steps)
    with pytest.raises(ValueError, match="bad"):
        next(steps)
