"""Refine a finished refinement again, from where it ended, with the parameter groups the user frees.

The refined cell, atoms and Biso come from the result's structures; the profile, the optional
terms kept (Kα doublet, preferred orientation) and the wavelength as modelled from its
RefinementReport; scales and background start from their linear least-squares solution for that
model. Then one least-squares stage over the free groups (model.refine's names: scale, bkg, zero,
displacement, cell, profile, asymmetry, polarisation, ka2, xyz, biso, po); fixed groups keep
their values.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence

from model.errors import InputError
from model.pattern import Pattern
from model.refine import Rietveld
from model.refinement import to_solve_result
from model.result import Progress, SolveResult

MAX_NFEV = 40


def refine_again(pattern: Pattern, result: SolveResult, free: Sequence[str],
                 excluded: Sequence[tuple[float, float]] = ()) -> Generator[Progress, None, SolveResult]:
    """A job (model.result.Progress, then the refined SolveResult); stop iterating to cancel."""
    report = result.refinement
    if report is None:
        raise InputError(None, "this solution carries no refinement to continue: press Refine first")
    if not free:
        raise InputError(None, "no parameter is ticked to refine")
    began = time.perf_counter()
    yield Progress("refine", 0.0, "reflections and constraints")
    structures = [phase.structure for phase in (result, *result.phases)]
    problem = Rietveld(pattern, structures, report.instrument, excluded)
    if "doublet" in report.terms:
        problem.model.wavelength = report.instrument.wavelength
    problem.kept = list(report.terms)
    for phase, orientation in zip(problem.phases, report.orientations):
        if orientation is not None:
            phase.po_direction = tuple(orientation[0])
            problem.p[phase.slices["po"]] = orientation[1]
    problem.p = problem.model.linear_start(problem.p)  # for the restored model, not the bare one
    for nfev in problem.fit(stages=[tuple(free)], max_nfev=MAX_NFEV):
        yield Progress("refine", min(nfev, MAX_NFEV) / MAX_NFEV, f"refining {', '.join(free)}")
    outcome = problem.result()
    refined = to_solve_result(outcome)
    # the map stays: the network drew it for this structure, which refining moves little
    refined.model_version, refined.device, refined.density = result.model_version, result.device, result.density
    refined.timings["refine"] = time.perf_counter() - began
    yield Progress("refine", 1.0, f"Rwp {outcome.rwp:.2f} %")
    return refined
