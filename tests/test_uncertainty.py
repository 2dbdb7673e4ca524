"""Esds of the refinement (model.uncertainty) and the agreement factors beside Rwp (model.agreement)."""

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from scipy.optimize import curve_fit

from model.agreement import gof_note
from model.instrument import Instrument
from model.pattern import ANODES
from model.refine import Rietveld
from model.refinement import to_solve_result
from model.simulate import Sample, simulate_pattern
from model.uncertainty import (
    cell_jacobian,
    cell_parameters,
    coordinate_rows,
    covariance,
    format_esd,
)

ALL = ("scale", "bkg", "zero", "cell", "profile", "xyz", "biso")
# counts: the intensities are Poisson counts, so the refinement's 1/y weights are the true 1/σ²
TRUE = Instrument(ANODES["CuKa1"], u=0.0, v=0.0, w=0.004, x=0.03, y=0.0, zero=0.02)
SAMPLE = Sample(scale=3000, counts=3000, background=(0.05,))
GRID = np.arange(20, 75, 0.04)


def _layered():
    """Ba 1a, Ti 1c, O 2h (½ ½ z) and O 4i (0 ½ z) in P4/mmm: a, c and two free z."""
    return Structure.from_spacegroup("P4/mmm", Lattice.tetragonal(3.9, 6.1), ["Ba", "Ti", "O", "O"],
                                     [[0, 0, 0], [0.5, 0.5, 0.0], [0.5, 0.5, 0.31], [0.0, 0.5, 0.22]])


def _refined(rng):
    pattern = simulate_pattern(_layered(), TRUE, GRID, SAMPLE, rng=rng, biso=0.6)
    problem = Rietveld(pattern, _layered(), TRUE)
    for _ in problem.fit(stages=[ALL], max_nfev=20):
        pass
    return problem, problem.result()


def _measured(outcome):
    """a, c, zero, W, X, Ba Biso, scale and the 2h O z, each as (value, esd)."""
    named = {q.name: q for q in outcome.report.parameters}
    rows = [(named[n].value, named[n].esd) for n in ("a", "c", "zero", "W", "X", "Ba Biso", "scale")]
    apical = next(k for k, atom in enumerate(outcome.atoms) if atom.wyckoff == "2h")
    return rows + [(outcome.atoms[apical].xyz[2], outcome.report.xyz_esd[0][apical, 2])]


def test_esds_match_the_scatter_over_poisson_realisations():
    """The strong check: refined values over independent noise draws scatter as their esds say."""
    rng = np.random.default_rng(7)
    draws = [_measured(_refined(rng)[1]) for _ in range(12)]
    values, esds = np.array(draws).transpose(2, 0, 1)
    ratio = values.std(axis=0, ddof=1) / esds.mean(axis=0)
    # 12 draws: the sample standard deviation itself scatters by about 20 %
    assert np.all((ratio > 0.5) & (ratio < 1.7)), ratio
    assert 0.75 < np.exp(np.mean(np.log(ratio))) < 1.3, ratio


def test_esds_match_scipy_curve_fit_covariance():
    problem, outcome = _refined(np.random.default_rng(3))
    free = problem.jacobian[0]
    full = torch.tensor(problem.p)

    def model(_x, *q):
        with torch.no_grad():
            return problem.model.calculated(full.index_put((torch.tensor(free),), torch.tensor(q)))[0].numpy()

    sigma = 1 / problem.model.sqrt_w.numpy()
    _, pcov = curve_fit(model, problem.model.x.numpy(), problem.model.y_obs.numpy(), p0=problem.p[free], sigma=sigma,
                        absolute_sigma=False)
    scipy_esd = dict(zip(free.tolist(), np.sqrt(np.diag(pcov))))
    named = {q.name: q for q in outcome.report.parameters}
    for name, group, offset in (("zero", "zero", 0), ("W", "profile", 2), ("X", "profile", 3)):
        index = np.arange(problem.p.size)[problem.layout.slices[group]][offset]
        assert named[name].esd == pytest.approx(scipy_esd[index], rel=0.05)
    phase = problem.phases[0]
    biso = np.arange(problem.p.size)[phase.slices["biso"]][phase.elements.index("Ba")]
    assert named["Ba Biso"].esd == pytest.approx(scipy_esd[biso], rel=0.05)
    cell = np.arange(problem.p.size)[phase.slices["cell"]]
    a_esd = np.sqrt(cell_jacobian(problem.p[cell], phase.metric_basis.numpy())[0] ** 2 @ [scipy_esd[i] ** 2 for i in cell])
    assert named["a"].esd == pytest.approx(a_esd, rel=0.05)


@pytest.fixture(scope="module")
def refined():
    return _refined(np.random.default_rng(5))


def test_report_lists_every_group_and_agreement(refined):
    _, outcome = refined
    report = outcome.report
    assert set(report.free) == set(ALL)
    named = {q.name: q for q in report.parameters}
    # tetragonal: a, c and V, no b and no right angles
    assert {"a", "c", "V"} <= set(named) and not {"b", "α", "β", "γ"} & set(named)
    assert named["displacement × cos θ"].esd is None and not named["displacement × cos θ"].refined
    assert outcome.gof == pytest.approx(outcome.rwp / report.rexp, rel=1e-6)
    assert 0.8 < outcome.gof < 1.3  # Poisson counts with their true weights
    assert 0 < report.r_bragg[0] < outcome.rwp
    assert report.weights.shape == outcome.fit.two_theta.shape
    rows = coordinate_rows(to_solve_result(outcome))
    assert sorted(q.name for q in rows) == ["O 2h z", "O 4i z"]
    assert all(q.esd is not None and q.esd > 0 for q in rows)


def test_covariance_leaves_bound_and_undetermined_parameters_out():
    rng = np.random.default_rng(0)
    jacobian = np.column_stack([rng.normal(size=50), rng.normal(size=50), np.zeros(50), rng.normal(size=50)])
    cov = covariance(jacobian, 2.0, at_bound=np.array([False, False, False, True]))
    expected = np.linalg.inv(jacobian[:, :2].T @ jacobian[:, :2]) * 2.0
    assert np.allclose(cov[:2, :2], expected)
    assert np.isnan(cov[2:, :]).all() and np.isnan(cov[:, 2:]).all()


def test_cell_parameters_of_a_metric():
    lattice = Lattice.from_parameters(5.0, 6.0, 7.0, 80.0, 95.0, 100.0)
    values = cell_parameters(lattice.metric_tensor)
    assert values == pytest.approx([5, 6, 7, 80, 95, 100, lattice.volume])


@pytest.mark.parametrize("value, esd, text", [
    (5.43121, 0.00031, "5.4312(3)"), (5.43121, 0.00016, "5.43121(16)"), (0.25, 0.0019, "0.2500(19)"),
    (1234.5, 23.0, "1230(20)"), (0.3, None, "0.30000"), (6.1, 0.000196, "6.1000(2)"),
])
def test_format_esd(value, esd, text):
    assert format_esd(value, esd) == text


def test_gof_note_explains_a_large_gof_at_a_low_rwp():
    assert "synchrotron" in gof_note(1.5, 0.0033, 458)
    assert gof_note(1.5, 1.4, 1.07) == ""
    assert gof_note(25.0, 2.0, 12.5) == ""


def test_cif_refinement_block_reads_back(refined, tmp_path):
    """pymatgen's CIF reader takes the structure and every refinement item; Rwp recomputed from the
    profile loop equals the stated one."""
    from pymatgen.io.cif import CifFile, CifParser, str2float

    from model.exporters import export

    _, outcome = refined
    result = to_solve_result(outcome)
    path = tmp_path / "refined.cif"
    export(path, result)
    structure = CifParser(str(path)).parse_structures(primitive=False)[0]
    assert structure.lattice.a == pytest.approx(result.lattice[0], abs=1e-4)
    block = next(iter(CifFile.from_file(str(path)).data.values())).data
    named = {q.name: q for q in outcome.report.parameters}
    assert block["_cell_length_a"] == format_esd(float(str2float(block["_cell_length_a"])), named["a"].esd)
    assert "(" in block["_cell_length_a"] and "(" in block["_cell_length_c"] and "(" in block["_cell_volume"]
    assert "(" not in block["_cell_angle_alpha"]  # fixed by the symmetry
    assert float(block["_pd_proc_ls_prof_wR_factor"]) == pytest.approx(outcome.rwp / 100, abs=1e-4)
    assert float(block["_pd_proc_ls_prof_R_factor"]) == pytest.approx(outcome.rp / 100, abs=1e-4)
    assert float(block["_refine_ls_goodness_of_fit_all"]) == pytest.approx(outcome.gof, abs=1e-3)
    assert float(block["_pd_proc_ls_prof_wR_expected"]) == pytest.approx(outcome.report.rexp / 100, abs=1e-4)
    assert "U " + format_esd(named["U"].value, named["U"].esd) in block["_pd_proc_ls_profile_function"]
    assert all("(" in b for b in block["_atom_site_B_iso_or_equiv"])
    tth, obs, w, bkg, calc = (np.array(block[key], dtype=float) for key in (
        "_pd_meas_2theta_scan", "_pd_meas_intensity_total", "_pd_proc_ls_weight",
        "_pd_proc_intensity_bkg_calc", "_pd_calc_intensity_total"))
    assert tth.size == GRID.size and np.all(bkg <= calc + 1e-6)
    rwp = np.sqrt(np.sum(w * (obs - calc) ** 2) / np.sum(w * obs**2))
    assert rwp == pytest.approx(float(block["_pd_proc_ls_prof_wR_factor"]), abs=2e-4)


def test_refine_again_refines_only_the_free_groups(refined):
    from model.refine_again import refine_again

    problem, outcome = refined
    before = to_solve_result(outcome)
    job = refine_again(problem.pattern, before, ["scale", "cell"])
    steps = []
    while True:
        try:
            steps.append(next(job))
        except StopIteration as stop:
            after = stop.value
            break
    assert steps[-1].fraction == 1.0
    report = after.refinement
    assert report.free == ["scale", "cell"]
    named_before = {q.name: q for q in outcome.report.parameters}
    named = {q.name: q for q in report.parameters}
    assert named["U"].value == named_before["U"].value and named["U"].esd is None
    assert named["Ba Biso"].value == pytest.approx(named_before["Ba Biso"].value, abs=1e-9)
    assert named["a"].refined and named["a"].esd > 0
    assert after.rwp == pytest.approx(before.rwp, abs=0.05)
    assert after.lattice[0] == pytest.approx(before.lattice[0], abs=3 * named_before["a"].esd)
