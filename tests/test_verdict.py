import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from model.fourier import with_maps
from model.instrument import Instrument
from model.pattern import ANODES, Pattern, Provenance
from model.refine import Rietveld, refine
from model.refinement import to_solve_result
from model.significance import positive_excess
from model.simulate import Sample, simulate_pattern
from model.solve import solve
from model.verdict import ABSENT_SIGMA, LE_BAIL_RATIO, forbidden_intensity, judge

TWO_THETA = np.arange(10, 90, 0.02)


def _rocksalt(first: str, second: str, at: float) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), [first, second], [[0, 0, 0], [at, at, at]])


@pytest.fixture(scope="module")
def nacl_pattern() -> Pattern:
    instrument = Instrument(ANODES["CuKa"], w=0.004, zero=0.02)
    return simulate_pattern(_rocksalt("Na", "Cl", 0.5), instrument, TWO_THETA, Sample(counts=20000),
                            rng=np.random.default_rng(1), biso=0.8)


def _judged(pattern: Pattern, structure: Structure):
    problem = Rietveld(pattern, structure)
    for _ in problem.fit(max_nfev=20):
        pass
    refined = problem.result()
    return refined, judge(pattern, refined, with_maps(to_solve_result(refined)), [])


def test_the_true_structure_is_called_solved(nacl_pattern):
    refined, evidence = _judged(nacl_pattern, _rocksalt("Na", "Cl", 0.5))
    assert evidence.solved, evidence.reasons
    # the Le Bail fit frees the intensities in the same profile: it fits no worse than the true atoms
    assert evidence.le_bail_rwp <= refined.rwp * 1.05 and evidence.le_bail_ratio < 1.1
    assert not evidence.rivals and not evidence.too_close
    # the reflections F-centring forbids hold noise only
    assert len(evidence.absent_amplitudes) > 3 and evidence.absent_sigma < ABSENT_SIGMA
    assert "Le Bail" in evidence.text() and evidence.as_dict()["solved"] is True


def test_a_wrong_placement_with_a_low_rwp_is_not_solved(nacl_pattern):
    # Cl in the tetrahedral holes (zinc blende) of the right cell: the lines are all there and
    # Rwp stays under 15 %, but the intensities are wrong, which the Le Bail fit shows
    refined, evidence = _judged(nacl_pattern, _rocksalt("Na", "Cl", 0.25))
    assert refined.rwp < 15
    assert not evidence.solved
    assert evidence.le_bail_ratio > LE_BAIL_RATIO
    assert any("Le Bail" in reason for reason in evidence.reasons)


def test_weak_superstructure_lines_add_up_against_the_average_structure():
    # ordered FeNi3 (L1₂, Pm-3m): its superstructure lines at the reflections fcc forbids carry
    # (f_Ni − f_Fe)², 0.03 % of the fundamentals: none stands out of the noise alone (each under
    # 4 σ), but all are positive; the disordered fcc average (Fm-3m) fits them as noise
    ordered = Structure.from_spacegroup("Pm-3m", Lattice.cubic(3.55), ["Fe", "Ni"], [[0, 0, 0], [0, 0.5, 0.5]])
    pattern = simulate_pattern(ordered, Instrument(ANODES["CuKa"], w=0.004, zero=0.02), TWO_THETA,
                               Sample(counts=25000), rng=np.random.default_rng(1), biso=0.8)
    average = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.55), ["Ni"], [[0, 0, 0]])
    _, evidence = _judged(pattern, average)
    assert max(evidence.absent_amplitudes) < 4 and evidence.absent_sigma > ABSENT_SIGMA
    assert any("forbids" in reason for reason in evidence.reasons)
    # the ordered structure's group forbids nothing: no such evidence
    assert forbidden_intensity(pattern, refine(pattern, ordered, max_nfev=20)) == []


def test_positive_excess_adds_weak_lines_of_one_sign():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(400)
    assert abs(positive_excess(noise)) < 3
    weak = rng.standard_normal(30) + 1.5  # lines of 1.5 σ each: none significant alone
    assert positive_excess(weak) > 4 and positive_excess(-weak) < 2
    assert positive_excess([-1.0]) == -np.inf and np.isnan(positive_excess([]))


def test_a_pattern_of_noise_is_not_solved():
    rng = np.random.default_rng(0)
    noise = rng.poisson(200.0, TWO_THETA.size).astype(float)
    pattern = Pattern(TWO_THETA, noise, wavelength=ANODES["CuKa"], provenance=Provenance(path="noise.xy"))
    job = solve(pattern, ["Na", "Cl"], formula="NaCl", device="cpu")
    while True:
        try:
            next(job)
        except StopIteration as stop:
            result = stop.value
            break
    assert not result.solved and result.message
