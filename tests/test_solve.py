import json
from pathlib import Path

import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Lattice, Structure
from pymatgen.io.common import VolumetricData

from cmedgui.cli import main
from cmedgui.commands.solve import write_outputs
from model.errors import InputError
from model.instrument import Instrument
from model.pattern import ANODES
from model.simulate import Sample, simulate_pattern
from model.solve import SYMMETRY_RWP_SLACK, solve
from model.structure import load_structure

EXAMPLE = Path(__file__).resolve().parents[1] / "resources" / "examples" / "CeO2_CuKa.xy"


def _run(job):
    progress = []
    while True:
        try:
            progress.append(next(job))
        except StopIteration as stop:
            return stop.value, progress


@pytest.fixture(scope="module")
def perovskite_pattern():
    structure = Structure.from_spacegroup("Pm-3m", Lattice.cubic(5.795), ["Cs", "Sn", "Br"],
                                          [[0, 0, 0], [0.5, 0.5, 0.5], [0, 0.5, 0.5]])
    instrument = Instrument(ANODES["CuKa"], w=0.004, zero=0.02)
    pattern = simulate_pattern(structure, instrument, np.arange(10, 90, 0.02), Sample(counts=20000),
                               rng=np.random.default_rng(1))
    return structure, pattern


def test_solve_simulated_cubic_perovskite(perovskite_pattern):
    structure, pattern = perovskite_pattern
    result, progress = _run(solve(pattern, ["Cs", "Sn", "Br"], formula="CsSnBr3"))
    assert result.solved and result.rwp < 10
    assert result.space_group == "Pm-3m" and result.crystal_system == "cubic"
    assert StructureMatcher().fit(structure, result.structure)
    assert {"preprocess", "index", "search", "refine"} <= set(result.timings)
    # the browser shows the solution first, then the others by Rwp; an equal fit (within the slack)
    # of a bigger cell, such as the 2×2×2 supercell, does not displace the simplest description
    others = [alternative.rwp for alternative in result.alternatives]
    assert others and others == sorted(others) and result.rwp <= others[0] + SYMMETRY_RWP_SLACK
    fractions = [p.fraction for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # what the network sees in the indexed cell is shown before the search ends, with no atoms yet
    previews = [p for p in progress if p.preview is not None]
    assert len(previews) == 1 and progress.index(previews[0]) < next(
        i for i, p in enumerate(progress) if p.stage == "refine")
    seen = previews[0].preview
    assert seen.kind == "network" and seen.structure is None
    assert np.allclose(np.linalg.norm(seen.lattice, axis=1), 5.795, rtol=2e-3)


def test_solve_can_be_cancelled_between_steps(perovskite_pattern):
    _, pattern = perovskite_pattern
    job = solve(pattern, ["Cs", "Sn", "Br"], formula="CsSnBr3")
    for _ in range(3):
        next(job)
    job.close()


@pytest.mark.parametrize("elements,formula", [(["Xx"], None), (["Cs"], "CsSnBr3"), (["Cs", "Br"], "Cs1.5Br")])
def test_bad_composition_is_input_error(perovskite_pattern, elements, formula):
    with pytest.raises(InputError):
        next(solve(perovskite_pattern[1], elements, formula=formula))


def test_cli_solve_writes_outputs(perovskite_pattern, tmp_path):
    from model.exporters import export

    export(tmp_path / "csnbr.xy", perovskite_pattern[1])
    out = tmp_path / "out"
    code = main(["solve", str(tmp_path / "csnbr.xy"), "--elements", "Cs", "Sn", "Br", "--formula", "CsSnBr3",
                 "--wavelength", "CuKa", "--system", "cubic", "--out", str(out)])
    assert code == 0
    report = json.loads((out / "csnbr_report.json").read_text())
    assert report["solved"] and report["space_group"] == "Pm-3m" and report["rwp"] < 10
    assert set(report["timings_s"]) >= {"preprocess", "index", "search", "refine"}
    for name in ("csnbr.cif", "csnbr_fit.csv", "csnbr_density.cube", "csnbr_fobs.cube", "csnbr_diff.cube",
                 "csnbr_peaks.csv"):
        assert (out / name).stat().st_size > 0
    assert (out / "csnbr_peaks.csv").read_text().splitlines()[0] == "x,y,z,height,nearest_atom"
    assert report["difference_map"]["max_e_per_A3"] > 0 > report["difference_map"]["min_e_per_A3"]


def test_cli_solve_bad_input_exits_2(tmp_path, capsys):
    missing = tmp_path / "missing.xy"
    assert main(["solve", str(missing), "--elements", "Na", "--out", str(tmp_path / "o")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def bundled_example_solved():
    from model.readers import read_patterns

    result, _ = _run(solve(read_patterns(EXAMPLE)[0], ["Ce", "O"]))
    return result


def test_bundled_example_is_reported_in_its_conventional_cell(bundled_example_solved):
    # fcc CeO2 fits as well in the I-centred tetragonal cell of half the volume; the report, sites
    # and CIF must still be the cubic Fm-3m cell, not that cell labelled Fm-3m
    result = bundled_example_solved
    assert result.solved and result.space_group == "Fm-3m"
    assert result.lattice[:3] == pytest.approx((5.411,) * 3, abs=0.01) and len(result.atoms) == 12
    # Ce on 4a or on 4b: the two origins of the fluorite structure
    wyckoffs = {s.element: s.wyckoff for s in result.sites}
    assert len(result.sites) == 2 and wyckoffs["Ce"] in ("4a", "4b") and wyckoffs["O"] == "8c"


def test_every_map_of_a_solve_is_in_its_solutions_cell_with_its_atoms(bundled_example_solved, tmp_path):
    # the winner was found in the tetragonal cell: its map once kept that cell (3.83 × 3.83 × 5.41 Å)
    # while its CIF was cubic 5.41 Å
    result = bundled_example_solved
    for solution in [result, *result.alternatives]:
        density = solution.density
        assert density.kind == "network"
        np.testing.assert_allclose(Lattice(density.lattice).parameters, solution.lattice, atol=1e-6)
        assert StructureMatcher().fit(density.structure, solution.structure)
    write_outputs(tmp_path, EXAMPLE, result, {})
    cube = VolumetricData.from_cube(str(tmp_path / "CeO2_CuKa_density.cube"))
    cif = load_structure(tmp_path / "CeO2_CuKa.cif")
    np.testing.assert_allclose(cube.structure.lattice.parameters, cif.lattice.parameters, atol=1e-4)
    assert cube.structure.composition.reduced_formula == cif.composition.reduced_formula == "CeO2"
    assert "network map" in (tmp_path / "CeO2_CuKa_density.cube").read_text().splitlines()[0]
    report = json.loads((tmp_path / "CeO2_CuKa_report.json").read_text())
    assert report["density"].startswith("network map") and "CeO2" in report["density"]


def _solution(result):
    return (result.space_group, result.lattice, [(s.element, s.wyckoff, tuple(s.xyz)) for s in result.sites], result.rwp)


def test_the_same_sample_in_any_order_or_spelling_gives_the_same_solution(perovskite_pattern):
    # every random choice is seeded from the canonical problem (issue #17: the element order once
    # changed the answer)
    _, pattern = perovskite_pattern
    said = [(["Cs", "Sn", "Br"], "CsSnBr3"), (["Br", "Cs", "Sn"], "Br3SnCs"), (["Sn", "Br", "Cs"], "Cs2Sn2Br6")]
    solutions = [_solution(_run(solve(pattern, elements, formula=formula, system="cubic", samples=1))[0])
                 for elements, formula in said]
    assert solutions[0][0] == "Pm-3m" and solutions[1:] == [solutions[0]] * 2


def test_elements_alone_find_the_formula_of_a_simulated_fluorite():
    structure = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.463), ["Ca", "F"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    pattern = simulate_pattern(structure, Instrument(ANODES["CuKa"], w=0.004, zero=0.02), np.arange(10, 90, 0.02),
                               Sample(counts=20000), rng=np.random.default_rng(2))
    result, _ = _run(solve(pattern, ["F", "Ca"], system="cubic", samples=1))
    assert result.solved and result.structure.composition.reduced_formula == "CaF2"
    assert StructureMatcher().fit(structure, result.structure)


@pytest.mark.parametrize("elements,first", [(["K", "Ca", "C", "O", "F"], {"K": 1, "Ca": 1, "C": 1, "O": 3, "F": 1}),
                                            (["Ce", "O"], {"Ce": 1, "O": 2}), (["Mg", "Si"], {"Mg": 2, "Si": 1})])
def test_elements_alone_try_the_classic_valences_first(elements, first):
    from model.composition import chemistry, stoichiometries

    assert stoichiometries(chemistry(elements))[0] == first


@pytest.mark.parametrize("name, formula, space_group", [
    ("gw5052Mg2Si_100K_LTsup2.rtv.combined.cif", "Mg2Si", "Fm-3m"),
    ("wn6225Isup2.rtv.combined.cif", "KCaCO3F", "P-6m2"),
    ("wm2446Isup2.rtv.combined.cif", "KLaTiO4", "P4/nmm"),
])
def test_cli_solves_the_shared_experimental_patterns(shared_data, tmp_path, name, formula, space_group):
    """The acceptance of the solve on measured patterns: Rwp < 15 % and the published structure."""
    path = shared_data / "experimental" / name
    elements = [e.symbol for e in Composition(formula).elements]
    assert main(["solve", str(path), "--elements", *elements, "--formula", formula, "--out", str(tmp_path)]) == 0
    stem = name.split(".")[0]
    report = json.loads((tmp_path / f"{stem}_report.json").read_text())
    assert report["solved"] and report["rwp"] < 15.0
    assert report["space_group"] == space_group
    assert StructureMatcher().fit(load_structure(path), load_structure(tmp_path / f"{stem}.cif"))


@pytest.mark.slow
def test_klatio4_solves_alike_in_every_element_order(shared_data):
    from model.readers import read_patterns

    pattern = read_patterns(shared_data / "experimental" / "wm2446Isup2.rtv.combined.cif")[0]
    orders = (["K", "La", "Ti", "O"], ["O", "K", "Ti", "La"], ["Ti", "O", "La", "K"])
    solutions = [_solution(_run(solve(pattern, order, formula="KLaTiO4", samples=1))[0]) for order in orders]
    assert solutions[1:] == [solutions[0]] * 2
