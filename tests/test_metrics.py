import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from scipy.signal import resample
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from model.constraints import space_group_ops
from model.density import cmed
from model.metrics import (
    CRYSTAL_SYSTEMS,
    Alignment,
    aligned,
    allowed_shifts,
    best_alignment,
    best_equivalent_ssim,
    equivalents,
    local_maxima,
    point_operations,
    psnr,
    resample_grid,
    site_scores,
    ssim3d,
)
from model.structure import conventional_standard


@pytest.fixture
def grids():
    rng = np.random.default_rng(3)
    truth = rng.random((32, 32, 32)).astype(np.float32) ** 4
    return truth, (truth + 0.2 * rng.random(truth.shape)).astype(np.float32)


def test_ssim_and_psnr_equal_skimage(grids):
    truth, pred = grids
    t = resample_grid(torch.tensor(truth, dtype=torch.float64), 25)
    p = resample_grid(torch.tensor(pred, dtype=torch.float64), 25)
    data_range = float(t.max() - t.min())
    assert float(ssim3d(p, t, data_range)) == pytest.approx(
        structural_similarity(p.numpy(), t.numpy(), data_range=data_range), abs=1e-9)
    assert float(psnr(p, t, data_range)) == pytest.approx(
        peak_signal_noise_ratio(t.numpy(), p.numpy(), data_range=data_range), abs=1e-9)


def test_resample_equals_scipy_fourier_resampling(grids):
    truth, _ = grids
    expected = truth.astype(np.float64)
    for axis in range(3):
        expected = resample(expected, 25, axis=axis)
    ours = resample_grid(torch.tensor(truth, dtype=torch.float64), 25).numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-10)


@pytest.mark.parametrize("system, size", [("triclinic", 2), ("monoclinic", 4), ("orthorhombic", 8),
                                          ("tetragonal", 16), ("trigonal", 24), ("hexagonal", 24),
                                          ("cubic", 48)])
def test_holohedry_sizes_and_unimodular(system, size):
    ops = point_operations(system)
    assert len(ops) == size
    assert all(abs(round(np.linalg.det(m))) == 1 for m in ops)


def _inverted_shifted(values: np.ndarray) -> np.ndarray:
    n = values.shape[0]
    inverted = np.roll(values[::-1, ::-1, ::-1], 1, axis=(0, 1, 2))  # x → −x on the grid
    return np.roll(inverted, (n // 2, 0, n // 2), axis=(0, 1, 2))


@pytest.mark.parametrize("system", CRYSTAL_SYSTEMS)
def test_shifted_inverted_truth_scores_one(grids, system):
    truth, _ = grids
    ssim, _ = best_equivalent_ssim(_inverted_shifted(truth), truth, system)
    assert ssim == pytest.approx(1.0, abs=1e-6)


def test_cubic_axis_permutation_and_hexagonal_rotation_score_one(grids):
    truth, _ = grids
    assert best_equivalent_ssim(truth.transpose(2, 0, 1), truth, "cubic")[0] == pytest.approx(1.0, abs=1e-6)
    n = truth.shape[0]
    i, j, k = np.meshgrid(*[np.arange(n)] * 3, indexing="ij")
    rotated = truth[(i - j) % n, i, k]  # six-fold axis along c: (x, y, z) → (x − y, x, z)
    assert best_equivalent_ssim(rotated, truth, "hexagonal")[0] == pytest.approx(1.0, abs=1e-6)
    # a permutation is not an equivalence of an orthorhombic cell
    assert best_equivalent_ssim(truth.transpose(2, 0, 1), truth, "orthorhombic")[0] < 0.9


def test_best_over_samples_and_imperfect_prediction(grids):
    truth, pred = grids
    single = best_equivalent_ssim(pred, truth, "tetragonal")
    assert 0 < single[0] < 0.99 and np.isfinite(single[1])
    both = best_equivalent_ssim(np.stack([np.zeros_like(truth) + truth.mean(), pred]), truth, "tetragonal")
    assert both == pytest.approx(single)


def test_equivalents_count_and_odd_grid_refused(grids):
    truth, _ = grids
    assert equivalents(torch.tensor(truth), "cubic").shape == (48 * 8, 32, 32, 32)
    with pytest.raises(ValueError):
        equivalents(torch.zeros(25, 25, 25), "cubic")


# ---- cc over the allowed descriptions, site recall and precision

def _structures():
    return {
        # Fm-3m: origin shifts by half the cell swap Na and Cl
        "rocksalt": Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
                                              [[0, 0, 0], [0.5, 0.5, 0.5]]),
        # P4mm, polar: the origin is free along c
        "tetragonal BaTiO3": Structure.from_spacegroup(
            "P4mm", Lattice.tetragonal(3.99, 4.03), ["Ba", "Ti", "O", "O"],
            [[0, 0, 0], [0.5, 0.5, 0.52], [0.5, 0.5, 0.02], [0.5, 0, 0.49]]),
        # P6_3mc, polar and hexagonal
        "wurtzite ZnO": Structure.from_spacegroup("P6_3mc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"],
                                                  [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]]),
    }


def _described(structure, matrix: np.ndarray, shift: np.ndarray):
    """The structure with every atom x moved to M x + s: its density d satisfies d(M x + s) = ρ(x)."""
    frac = structure.frac_coords @ matrix.T + shift
    return Structure(structure.lattice, structure.species, frac % 1.0)


def _setup(name):
    structure = conventional_standard(_structures()[name])
    ops = space_group_ops(structure)
    return structure, ops, cmed(structure, n=32, conventional=False).values


@pytest.mark.parametrize("name, shift", [("rocksalt", (0.5, 0.5, 0.5)), ("tetragonal BaTiO3", (0.5, 0.5, 7 / 48)),
                                         ("wurtzite ZnO", (0, 0, 0.3125))])
@pytest.mark.parametrize("inverted", [False, True])
def test_truth_shifted_by_an_allowed_origin_or_inverted_scores_one(name, shift, inverted):
    structure, ops, truth = _setup(name)
    matrix = -np.eye(3, dtype=int) if inverted else np.eye(3, dtype=int)
    moved = _described(structure, matrix, np.array(shift))
    pred = cmed(moved, n=32, conventional=False).values
    assert np.corrcoef(pred.ravel(), truth.ravel())[0, 1] < 0.9  # the description does differ
    alignment = best_alignment(pred, truth, ops, ops.crystal_system)
    assert alignment.cc == pytest.approx(1.0, abs=1e-6)
    scores = site_scores(aligned(pred, alignment), structure)
    assert (scores.recall, scores.recall_z, scores.precision) == (1.0, 1.0, 1.0)


def test_a_shift_the_group_does_not_allow_is_not_forgiven():
    # NaCl with both atoms moved by a quarter diagonal is another crystal (Na and Cl on tetrahedral
    # sites of each other): only the every-shift superset mistakes it for the truth

    structure, ops, truth = _setup("rocksalt")
    pred = cmed(_described(structure, np.eye(3, dtype=int), np.array([0.25, 0.25, 0.25])), n=32,
                conventional=False).values
    assert best_alignment(pred, truth, ops, "cubic").cc < 0.9
    assert best_alignment(pred, truth, None, "cubic").cc == pytest.approx(1.0, abs=1e-6)


def test_allowed_origin_shifts_of_known_groups():
    _, ops, _ = _setup("tetragonal BaTiO3")
    identity = allowed_shifts(ops, "tetragonal", 48)[np.eye(3, dtype=np.int64).tobytes()]
    # P4mm: (0, 0, z) and (½, ½, z) for every z (Euclidean normaliser P¹4/mmm with c' → ε)
    assert len(identity) == 2 * 48
    assert {(int(x), int(y)) for x, y, _ in identity} == {(0, 0), (24, 24)}
    _, ops, _ = _setup("rocksalt")
    identity = allowed_shifts(ops, "cubic", 48)[np.eye(3, dtype=np.int64).tobytes()]
    # Fm-3m: the F-centring and (½, ½, ½) (normaliser Pm-3m with a/2)
    assert {tuple(s) for s in identity.tolist()} == {(0, 0, 0), (0, 24, 24), (24, 0, 24), (24, 24, 0),
                                                     (24, 24, 24), (24, 0, 0), (0, 24, 0), (0, 0, 24)}


def test_flat_map_scores_zero():
    structure, ops, truth = _setup("tetragonal BaTiO3")
    flat = np.full_like(truth, truth.mean())
    alignment = best_alignment(flat, truth, ops, "tetragonal")
    assert alignment.cc == 0.0
    scores = site_scores(aligned(flat, alignment), structure)
    assert (scores.recall, scores.recall_z, scores.precision) == (0.0, 0.0, 0.0)


def test_right_atoms_at_random_places_score_low():

    structure = _setup("wurtzite ZnO")[0] * (2, 2, 1)
    truth = cmed(structure, n=32, conventional=False).values
    ops = space_group_ops(structure)
    ccs, recalls = [], []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        scattered = Structure(structure.lattice, structure.species, rng.random((len(structure), 3)))
        pred = cmed(scattered, n=32, conventional=False).values
        alignment = best_alignment(pred, truth, ops, "hexagonal")
        ccs.append(alignment.cc)
        recalls.append(site_scores(aligned(pred, alignment), structure).recall)
    assert max(ccs) < 0.4 and np.mean(recalls) < 0.4


def test_z_weighted_recall_counts_heavy_atoms_more():
    structure, _, _ = _setup("tetragonal BaTiO3")
    heavy_only = structure.copy()
    heavy_only.remove_species(["O"])
    pred = cmed(heavy_only, n=32, conventional=False).values
    scores = site_scores(aligned(pred, Alignment(1.0, np.eye(3, dtype=np.int64), np.zeros(3))), structure)
    assert scores.recall == pytest.approx(2 / 5)
    assert scores.recall_z == pytest.approx((56 + 22) / (56 + 22 + 3 * 8))
    assert scores.precision == pytest.approx(2 / 5)


def test_local_maxima_find_a_peak_between_grid_points():
    n = 24
    x = np.arange(n) / n
    centre = np.array([0.3101, 0.52, 0.071])
    d = [(x - c + 0.5) % 1 - 0.5 for c in centre]
    grid = np.exp(-(d[0][:, None, None] ** 2 + d[1][None, :, None] ** 2 + d[2][None, None, :] ** 2) / (2 * 0.05 ** 2))
    positions, heights = local_maxima(grid)
    assert heights[0] == pytest.approx(grid.max())
    assert len(positions) == 1
    assert np.abs(positions[0] - centre).max() < 0.1 / n
