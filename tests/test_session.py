"""Session files (model.session): a round trip keeps everything; a damaged file is one clear error."""

import json
import zipfile

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from model.density import cmed
from model.errors import InputError
from model.instrument import Instrument
from model.pattern import ANODES, Provenance
from model.refine import Rietveld
from model.refinement import to_solve_result
from model.session import Session, load_session, save_session
from model.simulate import Sample, simulate_pattern


@pytest.fixture(scope="module")
def session():
    structure = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3])
    pattern = simulate_pattern(structure, Instrument(ANODES["CuKa"]), np.arange(20, 70, 0.05),
                               Sample(scale=1000, counts=1000), rng=np.random.default_rng(0))
    pattern = pattern.__class__(pattern.two_theta, pattern.intensity, np.sqrt(pattern.intensity + 1),
                                pattern.wavelength, Provenance("/data/nacl.xy", "text", {"comment": "NaCl", "n": 3}))
    problem = Rietveld(pattern, structure, Instrument(pattern.wavelength, u=0.0, v=0.0, w=0.004, x=0.02, y=0.0))
    for _ in problem.fit(stages=[("scale", "bkg", "cell", "profile", "biso")], max_nfev=10):
        pass
    result = to_solve_result(problem.result())
    result.density = cmed(structure, n=16)
    result.timings = {"refine": 1.5}
    second = to_solve_result(problem.result())
    return Session(patterns=[pattern, pattern.with_wavelength(ANODES["MoKa"])], current_pattern=1,
                   excluded=[(30.0, 31.5)], x_unit="q", scaling="sqrt",
                   elements={"Na": "known", "Cl": "known", "K": "possible", "Br": "excluded"}, formula="NaCl",
                   settings={"crystal_system": "cubic", "wavelength": "CuKa", "device": "cpu"},
                   results=[result, second], current_result=1, structure=structure.copy(
                       site_properties={"biso": [0.5] * len(structure)}),
                   density=result.density, free=["cell", "biso"])


def test_round_trip_keeps_everything(session, tmp_path):
    path = tmp_path / "work.cmedgui"
    save_session(path, session)
    loaded = load_session(path)
    assert [p.name for p in loaded.patterns] == ["nacl.xy", "nacl.xy"]
    for old, new in zip(session.patterns, loaded.patterns):
        assert np.array_equal(old.two_theta, new.two_theta) and np.array_equal(old.intensity, new.intensity)
        assert np.array_equal(old.sigma, new.sigma)
        assert old.wavelength == new.wavelength and old.provenance == new.provenance
    for name in ("current_pattern", "excluded", "x_unit", "scaling", "elements", "formula", "settings",
                 "current_result", "free"):
        assert getattr(loaded, name) == getattr(session, name), name
    old, new = session.results[0], loaded.results[0]
    assert new.lattice == old.lattice and new.atoms == old.atoms and new.reflections == old.reflections
    assert (new.rwp, new.rp, new.gof, new.space_group, new.timings) == (old.rwp, old.rp, old.gof, old.space_group,
                                                                        old.timings)
    for column in ("two_theta", "observed", "calculated", "background"):
        assert np.array_equal(getattr(new.fit, column), getattr(old.fit, column))
    assert new.refinement.parameters == old.refinement.parameters
    assert new.refinement.orientations == old.refinement.orientations
    assert new.refinement.instrument == old.refinement.instrument
    assert new.structure == old.structure
    assert np.array_equal(new.refinement.weights, old.refinement.weights)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(new.refinement.xyz_esd, old.refinement.xyz_esd))
    assert np.array_equal(new.density.values, old.density.values)
    assert np.array_equal(new.density.lattice, old.density.lattice)
    assert new.density.structure == old.density.structure
    assert loaded.structure == session.structure
    assert loaded.structure.site_properties["biso"] == [0.5] * len(session.structure)
    assert np.array_equal(loaded.density.values, session.density.values)


def _damaged(tmp_path, session, name, damage):
    path = tmp_path / name
    save_session(path, session)
    damage(path)
    with pytest.raises(InputError) as caught:
        load_session(path)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    return message


def test_truncated_garbage_and_wrong_version_are_one_clear_error(session, tmp_path):
    def truncate(path):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    def rewrite(path, change):
        with zipfile.ZipFile(path) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
        members = change(members)
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)

    def newer(members):
        state = json.loads(members["session.json"])
        state["version"] = 99
        return {**members, "session.json": json.dumps(state).encode()}

    def unknown_type(members):
        return {**members, "session.json": members["session.json"].replace(b'"Site"', b'"Popen"')}

    assert "truncated" in _damaged(tmp_path, session, "cut.cmedgui", truncate)
    assert "not a zip" in _damaged(tmp_path, session, "junk.cmedgui", lambda p: p.write_bytes(b"\x00garbage" * 100))
    assert "version 99" in _damaged(tmp_path, session, "new.cmedgui", lambda p: rewrite(p, newer))
    assert "damaged" in _damaged(tmp_path, session, "json.cmedgui",
                                 lambda p: rewrite(p, lambda m: {**m, "session.json": b"{not json"}))
    assert "Popen" in _damaged(tmp_path, session, "type.cmedgui", lambda p: rewrite(p, unknown_type))
    assert "damaged" in _damaged(tmp_path, session, "lost.cmedgui",
                                 lambda p: rewrite(p, lambda m: {k: v for k, v in m.items() if k != "arrays/0.npy"}))


def test_a_failed_save_leaves_the_old_file(session, tmp_path):
    path = tmp_path / "work.cmedgui"
    save_session(path, session)
    before = path.read_bytes()
    unsaveable = Session(settings={"x": np.array([object()], dtype=object)})  # no pickles: np.save refuses
    with pytest.raises(ValueError):
        save_session(path, unsaveable)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["work.cmedgui"]
    assert load_session(path).formula == "NaCl"
