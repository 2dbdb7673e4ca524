import numpy as np
import pytest
import torch
from scipy.signal import resample
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from model.metrics import (
    CRYSTAL_SYSTEMS,
    best_equivalent_ssim,
    equivalents,
    point_operations,
    psnr,
    resample_grid,
    ssim3d,
)


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
