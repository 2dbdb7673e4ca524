import csv
import math
import warnings

import numpy as np
import pytest
import torch
from pymatgen.analysis.diffraction.xrd import XRDCalculator
from pymatgen.core import DummySpecies, Lattice, Structure

from model import scattering
from model.errors import InputError
from model.instrument import Instrument, displacement_deg
from model.pattern import ANODES, Wavelength
from model.scattering import form_factor_coeffs, reflections, structure_factor_sq_torch
from model.simulate import (
    Sample,
    march_dollase,
    params_torch,
    profile,
    profile_torch,
    random_lab_params,
    simulate_pattern,
    sticks,
)

CU = ANODES["CuKa"]


@pytest.fixture(scope="module")
def copper() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.615), ["Cu"], [[0, 0, 0]])


@pytest.fixture(scope="module")
def rutile() -> Structure:
    return Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"],
                                     [[0, 0, 0], [0.3049, 0.3049, 0]])


def _load(path) -> Structure:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Structure.from_file(path)


def _agreement(reference, mine) -> tuple[int, int]:
    """(peaks above 1 %, of which within 0.01° and 1.5 % of the strongest)."""
    x, y = np.array(reference.x), np.array(reference.y)
    strong = y > 1
    nearest = np.abs(mine.two_theta[None] - x[strong, None]).argmin(1)
    ok = (np.abs(mine.two_theta[nearest] - x[strong]) <= 0.01) & (np.abs(mine.intensity[nearest] - y[strong]) <= 1.5)
    return int(strong.sum()), int(ok.sum())


def test_sticks_agree_with_xrdcalculator_on_shared_structures(shared_data):
    rows = list(csv.DictReader((shared_data / "structures" / "manifest.csv").read_text().splitlines()))[::10]
    total = good = 0
    for i, row in enumerate(rows):
        structure = _load(shared_data / "structures" / row["file"])
        wavelength, span = (1.540593, (0, 90)) if i % 2 else (0.709319, (5, 60))
        n, ok = _agreement(XRDCalculator(wavelength).get_pattern(structure, two_theta_range=span),
                           sticks(structure, wavelength, span))
        total, good = total + n, good + ok
    assert len(rows) >= 20 and total > 500
    assert good / total >= 0.99


def test_multiplicities_match_pymatgen_families(rutile):
    reference = XRDCalculator(1.540593).get_pattern(rutile)
    mine = sticks(rutile, 1.540593)
    assert np.allclose(mine.two_theta, reference.x, atol=1e-6)
    assert [sum(f["multiplicity"] for f in fam) for fam in reference.hkls] == mine.multiplicity.tolist()
    assert mine.intensity.max() == pytest.approx(100)
    assert tuple(mine.hkl[0]) == (1, 1, 0)


def test_biso_matches_pymatgen_debye_waller(rutile):
    biso = {"Ti": 0.6, "O": 1.1}
    reference = XRDCalculator(1.540593, debye_waller_factors=biso).get_pattern(rutile)
    mine = sticks(rutile, 1.540593, biso=biso)
    assert np.allclose(mine.intensity, reference.y, atol=1e-6)
    assert mine.intensity[-1] < sticks(rutile, 1.540593).intensity[-1]


def test_reflections_are_wavelength_free(copper):
    cu, mo = sticks(copper, CU, (0, 150)), sticks(copper, ANODES["MoKa"], (0, 60))
    n = min(len(cu), len(mo))
    assert np.allclose(cu.d[:n], mo.d[:n]) and np.allclose(cu.f2[:n], mo.f2[:n])
    refl = reflections(copper, 1.0)
    assert refl.hkl.tolist()[:3] == [[1, 1, 1], [2, 0, 0], [2, 2, 0]]
    assert refl.multiplicity.tolist()[:3] == [8, 6, 12]
    assert refl.d[0] == pytest.approx(3.615 / math.sqrt(3))
    assert len(reflections(copper, 10.0)) == 0 and len(sticks(copper, CU, (0, 5))) == 0
    # F(111) of fcc Cu = 4 f(s)
    s2 = (0.5 / refl.d[0]) ** 2
    z, a, b = 29, np.array([1.579, 1.82, 1.658, 0.532]), np.array([62.94, 12.453, 2.504, 0.333])
    f = z - 41.78214 * s2 * np.sum(a * np.exp(-b * s2))
    assert refl.f2[0] == pytest.approx((4 * f) ** 2, rel=1e-3)


def test_sticks_csv_columns(copper, tmp_path):
    path = tmp_path / "sticks.csv"
    sticks(copper, CU).write_csv(path)
    rows = list(csv.DictReader(path.read_text().splitlines()))
    assert list(rows[0]) == ["two_theta", "intensity", "d", "h", "k", "l", "multiplicity"]
    assert (rows[0]["h"], rows[0]["k"], rows[0]["l"], rows[0]["multiplicity"]) == ("1", "1", "1", "8")
    assert [p.name for p in tmp_path.iterdir()] == ["sticks.csv"]


def test_bad_inputs_raise_input_error(copper):
    with pytest.raises(InputError, match="2θ range"):
        sticks(copper, CU, (50, 10))
    with pytest.raises(InputError, match="form factor"):
        form_factor_coeffs(["Xx"])
    dummy = Structure(Lattice.cubic(4), [DummySpecies("X")], [[0, 0, 0]])
    with pytest.raises(InputError):
        reflections(dummy, 1.0)
    with pytest.raises(InputError, match="Gaussian width"):
        profile(np.arange(10.0, 20.0, 0.1), reflections(copper, 1.0), Instrument(CU, u=0.0, v=-0.01, w=0.001))


CLEAN = Sample(background=(), counts=None)


def _narrow(wavelength: Wavelength = CU, **changes) -> Instrument:
    return Instrument(wavelength, **{"u": 0.0, "v": 0.0, "w": 1e-4, "x": 0.0, "y": 0.0, **changes})


def _local_maxima(x, y, threshold):
    inner = (y[1:-1] > y[:-2]) & (y[1:-1] >= y[2:]) & (y[1:-1] > threshold)
    return x[1:-1][inner], y[1:-1][inner]


def test_ka2_doublet_position_and_ratio(copper):
    two_theta = np.arange(42.0, 44.0, 0.001)
    y = profile(two_theta, reflections(copper, 1.5), _narrow(), CLEAN)
    x, h = _local_maxima(two_theta, y, 10)
    d111 = 3.615 / math.sqrt(3)
    expected = [2 * math.degrees(math.asin(lam / (2 * d111))) for lam in (CU.ka1, CU.ka2)]
    assert x == pytest.approx(expected, abs=0.002)
    lp = [(1 + math.cos(math.radians(t)) ** 2) / (math.sin(math.radians(t / 2)) ** 2 * math.cos(math.radians(t / 2)))
          for t in expected]
    assert h[1] / h[0] == pytest.approx(0.5 * lp[1] / lp[0], rel=0.02)
    single = profile(two_theta, reflections(copper, 1.5), _narrow(CU.monochromatic()), CLEAN)
    assert len(_local_maxima(two_theta, single, 10)[0]) == 1


def test_zero_shift_and_displacement_move_peaks(copper):
    two_theta = np.arange(40.0, 46.0, 0.002)
    refl = reflections(copper, 1.5)
    mono = CU.monochromatic()
    base = two_theta[np.argmax(profile(two_theta, refl, _narrow(mono), CLEAN))]
    shifted = two_theta[np.argmax(profile(two_theta, refl, _narrow(mono, zero=0.1), CLEAN))]
    assert shifted - base == pytest.approx(0.1, abs=0.003)
    displaced = two_theta[np.argmax(profile(two_theta, refl, _narrow(mono, displacement=displacement_deg(0.2)), CLEAN))]
    theta = math.radians(base / 2)
    assert displaced - base == pytest.approx(math.degrees(-2 * 0.2 * math.cos(theta) / 240), abs=0.003)


def test_poisson_noise_statistics(copper):
    two_theta = np.arange(20.0, 100.0, 0.01)
    refl = reflections(copper, 1.0)
    sample = Sample(counts=2000.0, background=(0.2,))
    clean = profile(two_theta, refl, Instrument(CU), Sample(background=(0.2,)))
    noisy = profile(two_theta, refl, Instrument(CU), sample, np.random.default_rng(1))
    counts_clean, counts_noisy = clean / sample.scale * 2000, noisy / sample.scale * 2000
    assert np.allclose(counts_noisy, np.round(counts_noisy))
    z = (counts_noisy - counts_clean) / np.sqrt(counts_clean)
    assert abs(z.mean()) < 0.05 and z.std() == pytest.approx(1.0, abs=0.05)
    again = profile(two_theta, refl, Instrument(CU), sample, np.random.default_rng(1))
    assert np.array_equal(noisy, again)


def test_background_and_preferred_orientation(rutile, copper):
    two_theta = np.arange(10.0, 80.0, 0.02)
    refl = reflections(rutile, 1.2)
    flat = profile(two_theta, refl, _narrow(), Sample(background=(0.5,)))
    assert flat.min() == pytest.approx(flat.max() * 0.5 / 1.5, rel=0.01)
    factor = march_dollase(refl, 0.7, (0, 0, 1))
    lines = {tuple(h): f for h, f in zip(refl.hkl, factor)}
    assert lines[(0, 0, 2)] == pytest.approx(0.7 ** -3)
    assert lines[(2, 0, 0)] == pytest.approx(0.7 ** 1.5)
    # a cubic {100} line averages 2 members along the direction and 4 across it
    cubic = reflections(copper, 1.5)
    assert march_dollase(cubic, 0.7, (0, 0, 1))[1] == pytest.approx((2 * 0.7 ** -3 + 4 * 0.7 ** 1.5) / 6)


def test_torch_batch_equals_numpy_profile(copper, rutile):
    two_theta = np.arange(10.0, 90.0, 0.02)
    waves = [CU, ANODES["CoKa"]]
    instruments = [Instrument(CU, zero=0.03), Instrument(waves[1], u=0.02, x=0.05)]
    samples = [Sample(), Sample(background=(0.1, 0.02, 0.01))]
    refls = [reflections(copper, 0.9), reflections(rutile, 0.9)]
    expected = [profile(two_theta, r, i, s) / s.scale for r, i, s in zip(refls, instruments, samples)]
    width = max(len(r) for r in refls)
    d = torch.zeros(2, width, dtype=torch.float64)
    weight = torch.zeros(2, width, dtype=torch.float64)
    for i, r in enumerate(refls):
        d[i, :len(r)] = torch.from_numpy(r.d)
        weight[i, :len(r)] = torch.from_numpy(r.multiplicity * r.f2)
    batch = profile_torch(d, weight, torch.from_numpy(two_theta),
                          torch.tensor([w.ka1 for w in waves], dtype=torch.float64),
                          params_torch(instruments, samples, dtype=torch.float64))
    assert batch.shape == (2, two_theta.size)
    assert np.allclose(batch.numpy(), np.stack(expected), atol=1e-10)
    single = profile_torch(d.float(), weight.float(), torch.from_numpy(two_theta).float(),
                           torch.tensor([w.ka1 for w in waves]), params_torch(instruments, samples))
    assert np.allclose(single.numpy(), batch.numpy(), atol=1e-4)


def test_profile_torch_gradients_match_finite_differences(copper):
    refl = reflections(copper, 1.0)
    two_theta = torch.arange(30.0, 100.0, 0.02, dtype=torch.float64)
    weight = torch.from_numpy(refl.multiplicity * refl.f2)[None]
    base = params_torch([Instrument(CU)], [Sample()], dtype=torch.float64)

    def calc(values):
        params = {**base, **{k: v[None] for k, v in zip(("u", "w", "x", "zero"), values[1:])}}
        return profile_torch(torch.from_numpy(refl.d)[None] * values[0], weight, two_theta,
                             torch.tensor([CU.ka1], dtype=torch.float64), params)[0]

    start = torch.tensor([1.0, 0.01, 0.004, 0.02, 0.01], dtype=torch.float64)
    jacobian = torch.func.jacfwd(calc)(start)  # forward mode, as refinement uses it
    probe = torch.randn(two_theta.numel(), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    point = start.clone().requires_grad_(True)
    (reverse,) = torch.autograd.grad(calc(point) @ probe, point)
    assert torch.allclose(reverse, probe @ jacobian, rtol=1e-9)
    # peaks are cut at ±20 FWHM without a step, so finite differences see the same slope
    for i, eps in enumerate([1e-7, 1e-7, 1e-7, 1e-7, 1e-6]):
        step = eps * torch.eye(5, dtype=torch.float64)[i]
        numeric = (calc(start + step) - calc(start - step)) / (2 * eps)
        assert torch.allclose(numeric, jacobian[:, i], atol=1e-4 * jacobian[:, i].abs().max())


def test_peak_area_does_not_depend_on_shape(copper):
    two_theta = np.arange(30.0, 55.0, 0.002)
    refl = reflections(copper, 1.5)
    mono = CU.monochromatic()
    lorentzian = profile(two_theta, refl, _narrow(mono, w=1e-12, x=0.1), CLEAN)
    gaussian = profile(two_theta, refl, _narrow(mono, w=0.01), CLEAN)
    # both normalised to their maximum (the 111 line): compare areas relative to that line
    ratio = [np.trapezoid(y[(two_theta > a) & (two_theta < b)]) / np.trapezoid(y[two_theta < 47])
             for y in (lorentzian, gaussian) for a, b in [(49.0, 53.0)]]
    assert ratio[0] == pytest.approx(ratio[1], rel=0.02)


def test_structure_factor_gradient_matches_finite_differences(rutile):
    refl = reflections(rutile, 1.0)
    frac = torch.tensor(rutile.frac_coords, dtype=torch.float64, requires_grad=True)
    biso = torch.full((len(rutile),), 0.5, dtype=torch.float64, requires_grad=True)
    coeffs = torch.from_numpy(form_factor_coeffs([s.specie.symbol for s in rutile]))
    occupancy = torch.ones(len(rutile), dtype=torch.float64)
    hkl, d = torch.from_numpy(refl.hkl), torch.from_numpy(refl.d)
    frac_shift = frac.detach() + 0.01 * torch.randn(frac.shape, generator=torch.Generator().manual_seed(0),
                                                    dtype=torch.float64)
    frac_shift.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x, b: structure_factor_sq_torch(hkl, d, x, coeffs, occupancy, b), (frac_shift, biso))
    f2 = structure_factor_sq_torch(hkl, d, frac.detach(), coeffs, occupancy, torch.zeros(len(rutile),
                                                                                         dtype=torch.float64))
    assert np.allclose(f2.numpy(), refl.f2, rtol=1e-9)


def test_random_lab_params_are_valid_and_reproducible(copper):
    rng = np.random.default_rng(3)
    drawn = [random_lab_params(rng, CU) for _ in range(50)]
    assert drawn[:5] == [random_lab_params(r, CU) for r in [np.random.default_rng(3)] * 5]
    assert len({i.doublet is None for i, _ in drawn}) == 2 and len({s.po_ratio == 1 for _, s in drawn}) == 2
    assert all(abs(i.zero) <= 0.05 and s.counts > 0 for i, s in drawn)
    two_theta = np.arange(5.0, 120.0, 0.02)
    instrument, sample = next((i, s) for i, s in drawn if i.doublet)
    pattern = simulate_pattern(copper, instrument, two_theta, sample, np.random.default_rng(0))
    assert pattern.provenance.format == "simulated" and pattern.wavelength == CU
    assert np.all(np.isfinite(pattern.intensity)) and pattern.intensity.min() >= 0
    assert pattern.intensity.max() == pytest.approx(sample.scale, rel=0.2)
    # a monochromated instrument's pattern states no Kα2, so peak fits model none
    instrument, sample = next((i, s) for i, s in drawn if not i.doublet)
    assert simulate_pattern(copper, instrument, two_theta, sample).wavelength == CU.monochromatic()


def test_simulate_pattern_rejects_bad_grid(copper):
    with pytest.raises(InputError, match="increasing"):
        simulate_pattern(copper, Instrument(CU), np.array([10.0, 9.0, 11.0]))
    with pytest.raises(InputError, match="outside"):
        simulate_pattern(copper, Instrument(Wavelength(1.54)), np.array([10.0, 190.0]))
    with pytest.raises(InputError, match="finite"):
        profile(np.ones((3, 3)), reflections(copper, 1.0), Instrument(CU))


@pytest.mark.parametrize("name", ["cubic/spglib-197.cif", "monoclinic/spglib-008.cif", "hexagonal/spglib-189-2.cif"])
def test_symmetry_shortcut_changes_nothing(shared_data, monkeypatch, name):
    structure = _load(shared_data / "structures" / name)
    monkeypatch.setattr(scattering, "_SYMMETRY_PAYS", 0)
    by_orbit = reflections(structure, 1.2, biso=0.7)
    monkeypatch.setattr(scattering, "_SYMMETRY_PAYS", float("inf"))
    direct = reflections(structure, 1.2, biso=0.7)
    assert np.array_equal(by_orbit.hkl, direct.hkl) and np.array_equal(by_orbit.multiplicity, direct.multiplicity)
    assert np.allclose(by_orbit.f2, direct.f2, rtol=1e-6, atol=1e-9 * direct.f2.max())


def test_asymmetry_keeps_the_area_and_puts_the_tail_below_the_peak():
    """One line at 2θ ≈ 20°: P1 < 0 moves intensity to the low-angle side, the area stays."""
    from model.simulate import peaks_torch

    two_theta = torch.arange(15.0, 25.0, 0.005, dtype=torch.float64)
    d = torch.tensor([[1.540593 / (2 * math.sin(math.radians(10.0)))]], dtype=torch.float64)
    weight = torch.ones(1, 1, dtype=torch.float64)
    wl = torch.tensor([1.540593], dtype=torch.float64)
    lines = []
    for asymmetry in ((0.0, 0.0), (-0.1, 0.0)):
        params = params_torch([_narrow(CU.monochromatic(), w=0.01, x=0.02, asymmetry=asymmetry)], dtype=torch.float64)
        lines.append(peaks_torch(d, weight, two_theta, wl, params)[0].numpy())
    symmetric, tailed = lines
    below = two_theta.numpy() < 20.0
    assert tailed.sum() == pytest.approx(symmetric.sum(), rel=1e-3)
    assert tailed[below].sum() > 1.1 * symmetric[below].sum()
    assert tailed.min() >= 0
