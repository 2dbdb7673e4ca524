import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from cmedgui.cli import main
from model import constraints
from model.instrument import Instrument
from model.pattern import ANODES
from model.refine import Rietveld, refine, refine_structure
from model.refinement import to_solve_result
from model.simulate import Sample, simulate_pattern

CU = ANODES["CuKa"]


def _lab(wavelength=CU, **widths) -> Instrument:
    """A narrow-peaked instrument without angle dependence unless widths say otherwise."""
    return Instrument(wavelength, **{"u": 0.0, "v": 0.0, "w": 0.004, "x": 0.03, "y": 0.0, **widths})


def _layered(a=3.9, c=6.1, z=0.31):
    """Ba 1a, Ti 1c, O 2h (½ ½ z) and O 4i (0 ½ 0.22) in P4/mmm."""
    return Structure.from_spacegroup("P4/mmm", Lattice.tetragonal(a, c), ["Ba", "Ti", "O", "O"],
                                     [[0, 0, 0], [0.5, 0.5, 0.0], [0.5, 0.5, z], [0.0, 0.5, 0.22]])


@pytest.fixture(scope="module")
def perovskite():
    return _layered()


def test_constraints_follow_the_space_group(perovskite):
    ops = constraints.space_group_ops(perovskite)
    assert ops.symbol == "P4/mmm"
    assert len(constraints.metric_basis(ops)) == 2  # a and c
    free = {o.wyckoff: o.basis.shape[1] for o in constraints.site_orbits(perovskite, ops)}
    assert free == {"a": 0, "c": 0, "h": 1, "i": 1}
    cubic = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3])
    assert len(constraints.metric_basis(constraints.space_group_ops(cubic))) == 1


def test_refinement_recovers_cell_coordinates_and_profile(perovskite):
    instrument = _lab(u=0.004, v=-0.002, w=0.003, x=0.02, zero=0.03)
    pattern = simulate_pattern(perovskite, instrument, np.arange(15, 100, 0.02), Sample(counts=50000),
                               rng=np.random.default_rng(0))
    start = _layered(a=3.92, c=6.14, z=0.29)
    outcome = refine(pattern, start, Instrument.from_fwhm(pattern.wavelength, 0.12))
    assert outcome.rwp < 5
    assert np.allclose(outcome.structure.lattice.abc, perovskite.lattice.abc, rtol=1e-3)
    assert abs(outcome.instrument.zero - 0.03) < 0.01
    assert outcome.instrument.fwhm(60.0) == pytest.approx(instrument.fwhm(60.0), rel=0.1)
    apical = [s for s in outcome.atoms if s.wyckoff == "2h"]
    assert len(apical) == 2
    assert min(abs(s.xyz[2] - 0.31) for s in apical) < 0.005


def test_refine_structure_is_a_cancellable_generator(perovskite):
    pattern = simulate_pattern(perovskite, Instrument(CU), np.arange(15, 90, 0.02))
    job = refine_structure(pattern, perovskite)
    first = next(job)
    assert first.stage == "refine" and first.fraction == 0.0
    job.close()  # cancel: nothing else runs


def test_cli_refine_experimental_mg2si(shared_data, tmp_path):
    """Published Rwp 3.51 %; acceptance is within 1.5× of it."""
    cif = shared_data / "experimental" / "gw5052Mg2Si_100K_LTsup2.rtv.combined.cif"
    assert main(["refine", str(cif), str(cif), "--out", str(tmp_path)]) == 0
    import json

    report = json.loads((tmp_path / "gw5052Mg2Si_100K_LTsup2_report.json").read_text())
    assert report["published_rwp"] == pytest.approx(3.51)
    assert report["rwp"] < 1.5 * report["published_rwp"]
    assert report["space_group"] == "Fm-3m"
    assert min(site["biso"] for site in report["sites"]) >= 0
    for name in ("gw5052Mg2Si_100K_LTsup2.cif", "gw5052Mg2Si_100K_LTsup2_fit.csv",
                 "gw5052Mg2Si_100K_LTsup2_density.cube"):
        assert (tmp_path / name).stat().st_size > 0


def test_cli_refine_bad_structure_exits_2(shared_data, tmp_path, capsys):
    cif = shared_data / "experimental" / "gw5052Mg2Si_100K_LTsup2.rtv.combined.cif"
    bad = tmp_path / "bad.cif"
    bad.write_text("not a structure\n")
    assert main(["refine", str(cif), str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.cif" in err[0]
    assert not (tmp_path / "out").exists()


def test_sites_are_the_asymmetric_unit_in_the_standard_origin():
    """Antifluorite Mg2Si given with Si at ¼ ¼ ¼ (as the CeO2 solve finds Ce): 8 Mg + 4 Si in the
    cell, two Wyckoff rows at the standard origin (8c Mg at ¼ ¼ ¼, 4a Si at 0 0 0) that expand
    back to the same cell."""
    mg2si = Structure.from_spacegroup("Fm-3m", Lattice.cubic(6.35), ["Mg", "Si"],
                                      [[0.25, 0.25, 0.25], [0, 0, 0]])
    shifted = Structure(mg2si.lattice, mg2si.species, mg2si.frac_coords + 0.25)
    pattern = simulate_pattern(shifted, Instrument(CU), np.arange(20, 90, 0.05))
    result = to_solve_result(Rietveld(pattern, shifted).result())
    rows = {s.element: s for s in result.sites}
    assert len(result.sites) == 2 and len(result.atoms) == 12
    assert (rows["Mg"].wyckoff, rows["Si"].wyckoff) == ("8c", "4a")
    assert sum(int(s.wyckoff[:-1]) for s in result.sites) == len(result.atoms)
    assert rows["Mg"].xyz == pytest.approx((0.25,) * 3) and rows["Si"].xyz == pytest.approx((0, 0, 0))
    expanded = Structure.from_spacegroup(result.space_group_number, Lattice.from_parameters(*result.lattice),
                                         [s.element for s in result.sites], [s.xyz for s in result.sites])
    cell = result.structure
    assert StructureMatcher().fit(cell, mg2si)
    assert sorted(map(tuple, np.round(expanded.frac_coords, 6) % 1)) == sorted(map(tuple, np.round(cell.frac_coords, 6) % 1))


def _two_phase_pattern(scales, two_theta, instrument):
    """Rock salt + CsCl-type CsCl at physical scales S (I = S·m|F|²·LP), Cu Kα, no noise."""
    import torch

    from model.scattering import reflections
    from model.simulate import params_torch, peaks_torch

    rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3])
    cscl = Structure.from_spacegroup("Pm-3m", Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5] * 3])
    wl = ANODES["CuKa"]
    y = np.zeros_like(two_theta)
    for structure, scale in zip((rocksalt, cscl), scales):
        refl = reflections(structure, 1.0, biso=0.5)
        with torch.no_grad():
            peaks = peaks_torch(torch.tensor(refl.d)[None], torch.tensor(refl.multiplicity * refl.f2)[None],
                                torch.tensor(two_theta), torch.tensor([wl.ka1]),
                                params_torch([instrument], dtype=torch.float64))[0].numpy()
        y += scale * peaks
    from model.pattern import Pattern

    return Pattern(two_theta, y + 0.002 * y.max(), wavelength=wl), rocksalt, cscl


def test_two_phases_recover_their_scale_ratio_and_weight_fractions():
    scales = (1.0, 0.4)
    pattern, rocksalt, cscl = _two_phase_pattern(scales, np.arange(20, 80, 0.03), _lab())
    start = [s.copy() for s in (rocksalt, cscl)]
    for s, a in zip(start, (5.65, 4.11)):
        s.scale_lattice(a ** 3)
    problem = Rietveld(pattern, start, _lab(pattern.wavelength))
    for _ in problem.fit(stages=[("scale", "bkg", "cell"), ("scale", "bkg", "cell", "biso")], max_nfev=15):
        pass
    outcome = problem.result()
    fitted = [np.exp(problem.p[phase.slices["scale"]][0]) for phase in problem.phases]
    assert fitted[1] / fitted[0] == pytest.approx(scales[1] / scales[0], rel=0.02)
    assert outcome.rwp < 2
    assert [p.structure.lattice.a for p in outcome.phases] == pytest.approx([5.64, 4.12], abs=1e-3)
    # Hill–Howard: mass ∝ S · (cell mass) · V
    mass = [s * x.composition.weight * x.volume for s, x in zip(scales, (rocksalt, cscl))]
    expected = np.array(mass) / sum(mass)
    assert [p.weight_fraction for p in outcome.phases] == pytest.approx(expected, abs=0.01)
    result = to_solve_result(outcome)
    assert result.space_group == "Fm-3m" and [p.space_group for p in result.phases] == ["Pm-3m"]
    assert result.weight_fraction + result.phases[0].weight_fraction == pytest.approx(1.0)


# texture along a diagonal of the cubic cell is described in that cell (not only in a subgroup's,
# where the diagonal is an axis, and which would then fit better and report a lower symmetry)
@pytest.mark.parametrize("direction", [(0, 0, 1), (1, 1, 0), (1, 1, 1)])
def test_preferred_orientation_is_found_along_its_direction_and_recovered(perovskite, direction):
    pattern = simulate_pattern(perovskite, _lab(), np.arange(15, 90, 0.03),
                               Sample(po_ratio=0.8, po_direction=direction))
    problem = Rietveld(pattern, perovskite, _lab(pattern.wavelength))
    for _ in problem.fit(stages=[("scale", "bkg", "cell")], max_nfev=10, terms=("po",)):
        pass
    outcome = problem.result()
    assert outcome.terms == ["po"]
    axis, ratio = outcome.phases[0].preferred_orientation
    assert axis == direction
    assert ratio == pytest.approx(0.8, abs=0.01)
    assert "along [{} {} {}]".format(*direction) in to_solve_result(outcome).message


def test_an_optional_term_that_does_not_pay_is_left_out(perovskite):
    pattern = simulate_pattern(perovskite, _lab(ANODES["CuKa1"]), np.arange(15, 90, 0.03))
    problem = Rietveld(pattern, perovskite, _lab(pattern.wavelength))
    before = problem.p.copy()
    for _ in problem.fit(stages=[("scale", "bkg")], max_nfev=5, terms=("displacement", "asymmetry", "po")):
        pass
    outcome = problem.result()
    assert outcome.terms == [] and outcome.phases[0].preferred_orientation is None
    assert outcome.instrument.displacement == 0 and outcome.instrument.asymmetry == (0, 0)
    asymmetry = problem.layout.slices["asymmetry"]
    assert np.array_equal(problem.p[asymmetry], before[asymmetry])


def test_asymmetry_and_the_doublet_behind_a_stated_mean_wavelength(perovskite):
    """A Cu Kα doublet pattern with a low-angle tail, stated as the 1.5418 Å mean: both terms pay."""
    from model.pattern import Pattern, Wavelength

    simulated = simulate_pattern(perovskite, _lab(w=0.003, x=0.02, asymmetry=(-0.1, 0.0)), np.arange(15, 80, 0.02))
    pattern = Pattern(simulated.two_theta, simulated.intensity + 5, wavelength=Wavelength(1.5418))
    problem = Rietveld(pattern, perovskite, _lab(pattern.wavelength))
    for _ in problem.fit(stages=[("scale", "bkg", "zero", "cell", "profile")], max_nfev=15,
                         terms=("doublet", "asymmetry")):
        pass
    outcome = problem.result()
    assert outcome.terms == ["doublet", "asymmetry"]
    cu = ANODES["CuKa"]  # the doublet whose weighted mean is the stated 1.5418 Å
    modelled = outcome.instrument.wavelength
    assert modelled.ka1 == pytest.approx(cu.ka1, abs=1e-4)
    assert modelled.ka2 - modelled.ka1 == pytest.approx(cu.ka2 - cu.ka1)
    assert outcome.instrument.asymmetry[0] == pytest.approx(-0.1, abs=0.02)
    assert outcome.rwp < 3


def test_biso_stays_physical_where_the_data_ask_for_a_negative_one(perovskite):
    """Intensities × exp(+1 Å²·s²), as B = −0.5 Å² would give them: B ends at 0, not below."""
    pattern = simulate_pattern(perovskite, _lab(ANODES["CuKa1"]), np.arange(15, 110, 0.03))
    s2 = (np.sin(np.radians(pattern.two_theta / 2)) / pattern.wavelength.ka1) ** 2
    from dataclasses import replace as with_

    pattern = with_(pattern, intensity=pattern.intensity * np.exp(1.0 * s2) + 1.0)
    problem = Rietveld(pattern, perovskite, _lab(pattern.wavelength))
    for _ in problem.fit(stages=[("scale", "bkg", "biso")], max_nfev=15):
        pass
    biso = [site.biso for site in problem.result().atoms]
    assert min(biso) >= 0
    assert max(biso) < 0.05  # pushed to the bound


def test_cli_refines_every_structure_block_of_a_cif_as_a_phase(tmp_path):
    import json

    from model.exporters import export
    from model.structure import load_structures

    pattern, rocksalt, cscl = _two_phase_pattern((1.0, 0.4), np.arange(20, 70, 0.04), _lab())
    export(tmp_path / "mixture.xy", pattern)
    both = tmp_path / "both.cif"
    both.write_text(rocksalt.to(fmt="cif") + "\n" + cscl.to(fmt="cif"))
    assert [s.composition.reduced_formula for s in load_structures(both)] == ["NaCl", "CsCl"]
    assert main(["refine", str(tmp_path / "mixture.xy"), str(both), "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "mixture_report.json").read_text())
    assert [p["space_group"] for p in report["phases"]] == ["Fm-3m", "Pm-3m"]
    assert sum(p["weight_fraction"] for p in report["phases"]) == pytest.approx(1.0)
    assert report["rwp"] < 5
    second = Structure.from_file(tmp_path / "out" / report["phases"][1]["cif"])
    assert second.composition.reduced_formula == "CsCl"


def test_contact_restraints_keep_trial_atoms_apart_and_leave_sound_structures_alone():
    # PbTiO3 (P4mm) and a wrong placement of the same atoms, as a search proposed one: refined
    # freely, its atoms run onto each other to fit the pattern better; restrained, they stay at
    # least 0.7 × their atomic radii apart, and the sound structure refines exactly as before
    lattice = Lattice.tetragonal(3.899, 4.168)
    species = ["Pb", "Ti", "O", "O"]
    sound = Structure.from_spacegroup("P4mm", lattice, species,
                                      [[0, 0, 0], [0.5, 0.5, 0.541], [0, 0.5, 0.621], [0.5, 0.5, 0.115]])
    wrong = Structure.from_spacegroup("P4mm", lattice, species,
                                      [[0, 0, 0.485], [0.5, 0.5, 0.062], [0, 0.5, 0.878], [0, 0, 0.209]])
    pattern = simulate_pattern(sound, Instrument(CU, w=0.004), np.arange(10, 90, 0.02), Sample(counts=20000),
                               rng=np.random.default_rng(3))

    def refined(structure, restrain):
        problem = Rietveld(pattern, structure, Instrument.from_fwhm(pattern.wavelength, 0.1), restrain_contacts=restrain)
        for _ in problem.fit(max_nfev=20):
            pass
        result = problem.result()
        distances = result.structure.distance_matrix + 99 * np.eye(len(result.structure))
        return result.rwp, distances.min()

    assert refined(sound, True) == pytest.approx(refined(sound, False), rel=1e-6)
    free, restrained = refined(wrong, False), refined(wrong, True)
    assert free[1] < 1.0
    assert restrained[1] > 0.7 * (1.80 + 0.60) - 0.05  # Pb–O
    assert restrained[0] > refined(sound, True)[0]
