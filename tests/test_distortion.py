import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from model import distortion
from model.instrument import Instrument
from model.pattern import ANODES
from model.refine import refine
from model.simulate import Sample, simulate_pattern
from model.solve import _lower_symmetry

A = 5.795  # Å, CsSnBr3's cubic cell


def _perovskite(c_over_a: float, tin_shift: float) -> Structure:
    """CsSnBr3 (cubic perovskite) with c stretched to ``c_over_a`` and Sn moved ``tin_shift`` along z:
    the ferroelectric distortion of BaTiO3."""
    cubic = Structure.from_spacegroup("Pm-3m", Lattice.cubic(A), ["Cs", "Sn", "Br"],
                                      [[0, 0, 0], [0.5, 0.5, 0.5], [0, 0.5, 0.5]])
    frac = cubic.frac_coords + np.outer([str(s) == "Sn" for s in cubic.species], [0, 0, tin_shift])
    return Structure(Lattice.tetragonal(A, A * c_over_a), cubic.species, frac)


def _cubic_solution_and_outcome(truth: Structure):
    """The cubic parent refined against ``truth``'s pattern (as the solve has it before the stage),
    and what the solve's pseudo-symmetry stage makes of it."""
    instrument = Instrument(ANODES["CuKa"], u=0.01, w=0.008, zero=0.02)
    pattern = simulate_pattern(truth, instrument, np.arange(10, 90, 0.02), Sample(counts=20000),
                               rng=np.random.default_rng(3))
    best = refine(pattern, _perovskite(1.0, 0.0))
    job = _lower_symmetry(pattern, best)
    while True:
        try:
            next(job)
        except StopIteration as stop:
            return best, stop.value


def test_one_percent_tetragonal_split_is_found():
    best, outcome = _cubic_solution_and_outcome(_perovskite(1.01, 0.03))
    assert best.space_group.crystal_system == "cubic"
    assert outcome.space_group.crystal_system == "tetragonal" and outcome.rwp < best.rwp
    a, _, c = outcome.structure.lattice.abc
    assert c / a == pytest.approx(1.01, abs=1e-3)


def test_undistorted_cubic_pattern_stays_cubic():
    best, outcome = _cubic_solution_and_outcome(_perovskite(1.0, 0.0))
    assert outcome is best and outcome.space_group.symbol == "Pm-3m"


def test_polar_trials_reach_each_polar_subgroup_once():
    trials = distortion.polar_trials(distortion.stretched(_perovskite(1.0, 0.0), distortion.STRAIN_START))
    # Cs, Sn or either Br site of P4/mmm moved along c: all give P4mm, whose z are all free
    assert [t.get_space_group_info(symprec=1e-3)[1] for t in trials] == [99]
