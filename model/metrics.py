"""Similarity of two CMED grids, and the equivalences under which two grids are the same crystal.

A CMED grid is indexed [i, j, k] at fractional (i/N, j/N, k/N) of the conventional cell. Two grids
describe the same crystal when they differ by an origin shift (at least the 8 half-cell shifts) or
by an operation of the lattice's holohedry (inversion; axis permutations for cubic cells, a↔b for
tetragonal, the hexagonal rotations for trigonal/hexagonal cells). Metrics and losses take the best
value over those candidates, as the seed paper did over cube rotations.

SSIM follows skimage.metrics.structural_similarity (7³ uniform window, K1 = 0.01, K2 = 0.03,
sample covariance, border of 3 voxels cropped); it is re-implemented in torch only so that the
hundreds of equivalent candidates are scored in one batched call (tests check it against skimage).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
from pymatgen.core import Structure
from scipy.ndimage import maximum_filter

from model import constraints
from model.data.systems import CRYSTAL_SYSTEMS
from model.density import resample_fractional

METRIC_GRID = 25  # the seed paper's evaluation grid (25³)
_WINDOW = 7
_K1, _K2 = 0.01, 0.03


def _close_group(generators: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    group = {np.eye(3, dtype=int).tobytes(): np.eye(3, dtype=int)}
    frontier = list(group.values())
    while frontier:
        new = []
        for g in frontier:
            for h in generators:
                m = g @ h
                if m.tobytes() not in group:
                    group[m.tobytes()] = m
                    new.append(m)
        frontier = new
    return tuple(sorted(group.values(), key=lambda m: m.tobytes()))


@cache
def point_operations(crystal_system: str) -> tuple[np.ndarray, ...]:
    """Integer matrices M (fractional x → M x) of the holohedry of the conventional lattice."""
    inversion = -np.eye(3, dtype=int)
    diag = [np.diag(s) for s in itertools.product((1, -1), repeat=3)]
    swap_ab = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    generators = {
        "triclinic": [inversion],
        "monoclinic": [inversion, np.diag((-1, 1, -1))],  # b unique, the standard setting
        "orthorhombic": diag,
        "tetragonal": diag + [swap_ab],
        "trigonal": [inversion, np.array([[1, -1, 0], [1, 0, 0], [0, 0, 1]]),
                     np.array([[0, 1, 0], [1, 0, 0], [0, 0, -1]])],
        "cubic": diag + [swap_ab, np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]])],
    }
    generators["hexagonal"] = generators["trigonal"]
    if crystal_system not in generators:
        raise ValueError(f"unknown crystal system {crystal_system!r}; one of {CRYSTAL_SYSTEMS}")
    return _close_group(generators[crystal_system])


@cache
def equivalent_index_maps(crystal_system: str, n: int) -> torch.Tensor:
    """(E, n³) flat indices: candidate e of a grid g is g.flatten()[maps[e]].reshape(n, n, n).

    Candidates are every point operation combined with every half-cell origin shift; n must be
    even so the half-cell shifts fall on grid points.
    """
    if n % 2:
        raise ValueError(f"grid size {n} is odd; half-cell shifts need an even grid")
    ijk = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    maps = []
    for m in point_operations(crystal_system):
        rotated = ijk @ m.T
        for shift in itertools.product((0, n // 2), repeat=3):
            idx = (rotated + np.array(shift)) % n
            maps.append((idx[:, 0] * n + idx[:, 1]) * n + idx[:, 2])
    return torch.as_tensor(np.stack(maps), dtype=torch.long)


def equivalents(values: torch.Tensor, crystal_system: str) -> torch.Tensor:
    """(..., n, n, n) → (..., E, n, n, n): every equivalent description of the grid(s)."""
    n = values.shape[-1]
    maps = equivalent_index_maps(crystal_system, n).to(values.device)
    flat = values.reshape(*values.shape[:-3], 1, n ** 3)
    return torch.take_along_dim(flat, maps.reshape(-1, n ** 3).expand(*flat.shape[:-2], -1, -1),
                                dim=-1).reshape(*values.shape[:-3], -1, n, n, n)


def resample_grid(values: torch.Tensor, n: int) -> torch.Tensor:
    """Periodic Fourier resampling of (..., m, m, m) grids to (..., n, n, n), odd n < m, at fractional i/n.

    The same values as scipy.signal.resample along each axis for odd n; done in one batched torch
    FFT because the metric resamples hundreds of candidates per structure.
    """
    m = values.shape[-1]
    if n > m or (n < m and n % 2 == 0):
        raise ValueError(f"resample_grid reduces grids to an odd size (asked {m} → {n})")
    if n == m:
        return values
    k = torch.arange(n) - n // 2
    keep = torch.roll(k % m, -(n // 2))  # frequencies 0, 1, …, −1 in FFT order
    spectrum = torch.fft.rfftn(values, dim=(-3, -2, -1))
    spectrum = spectrum[..., keep, :, :][..., :, keep, :][..., :, :, : n // 2 + 1]
    return torch.fft.irfftn(spectrum, s=(n, n, n), dim=(-3, -2, -1)) * (n / m) ** 3


def _box_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean over every fully-inside 7³ window of (..., n, n, n), separably by cumulative sums."""
    for dim in (-3, -2, -1):
        c = torch.cumsum(t, dim=dim)
        c = torch.cat([torch.zeros_like(c.narrow(dim, 0, 1)), c], dim=dim)
        n = c.shape[dim] - _WINDOW
        t = (c.narrow(dim, _WINDOW, n) - c.narrow(dim, 0, n)) / _WINDOW
    return t


def ssim3d(pred: torch.Tensor, truth: torch.Tensor, data_range: torch.Tensor | float) -> torch.Tensor:
    """Mean 3D SSIM over (..., n, n, n) grids (broadcast, in their dtype); data_range broadcasts
    over the leading dims."""
    x, y = torch.broadcast_tensors(pred, truth)
    mx, my = _box_mean(x), _box_mean(y)
    cov_norm = _WINDOW ** 3 / (_WINDOW ** 3 - 1)
    vx = cov_norm * (_box_mean(x * x) - mx * mx)
    vy = cov_norm * (_box_mean(y * y) - my * my)
    vxy = cov_norm * (_box_mean(x * y) - mx * my)
    dr = torch.as_tensor(data_range, dtype=x.dtype)[..., None, None, None]
    c1, c2 = (_K1 * dr) ** 2, (_K2 * dr) ** 2
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean(dim=(-3, -2, -1))


def psnr(pred: torch.Tensor, truth: torch.Tensor, data_range: torch.Tensor | float) -> torch.Tensor:
    """PSNR in dB, 10 log10(range² / MSE), over the last three dims."""
    mse = ((pred.double() - truth.double()) ** 2).mean(dim=(-3, -2, -1))
    return 10.0 * torch.log10(torch.as_tensor(data_range, dtype=torch.float64) ** 2 / mse)


@dataclass(frozen=True)
class SsimReference:
    """Every equivalent description of a truth grid on the metric grid, and the truth's data range."""

    candidates: torch.Tensor  # (E, n_metric, n_metric, n_metric)
    data_range: float


def ssim_reference(truth: np.ndarray | torch.Tensor, crystal_system: str,
                   n_metric: int = METRIC_GRID) -> SsimReference:
    """The truth's candidates, computed once to score several predictions against them."""
    truth = torch.as_tensor(np.asarray(truth, dtype=np.float32))
    candidates = resample_grid(equivalents(truth, crystal_system), n_metric).float()
    return SsimReference(candidates, float(candidates[0].max() - candidates[0].min()))


def best_ssim(pred: np.ndarray | torch.Tensor, reference: SsimReference) -> tuple[float, float]:
    """(SSIM, PSNR dB) of pred, or the best of (S, n, n, n) predictions, against the best-matching
    candidate of the reference; PSNR for the pair with the best SSIM."""
    n_metric = reference.candidates.shape[-1]
    preds = resample_grid(torch.as_tensor(np.asarray(pred, dtype=np.float32)), n_metric).float()
    preds = preds.reshape(-1, 1, n_metric, n_metric, n_metric)
    scores = ssim3d(preds, reference.candidates, reference.data_range)
    s, e = divmod(int(torch.argmax(scores)), scores.shape[1])
    return float(scores[s, e]), float(psnr(preds[s, 0], reference.candidates[e], reference.data_range))


def best_equivalent_ssim(pred: np.ndarray | torch.Tensor, truth: np.ndarray | torch.Tensor,
                         crystal_system: str, n_metric: int = METRIC_GRID) -> tuple[float, float]:
    """(SSIM, PSNR dB) of pred against the best-matching equivalent of truth, both on n_metric³.

    truth is a CMED grid (e/Å³) of even size; pred the same size, or (S, n, n, n) several
    predictions (latent samples), of which the best counts. The data range is that of truth;
    PSNR is reported for the pair with the best SSIM.
    """
    return best_ssim(pred, ssim_reference(truth, crystal_system, n_metric))


# ---- alignment over the space group's equivalent descriptions, and scores a crystallographer reads

SITE_RADIUS_A = 0.5  # a maximum this close to an atom finds it
SHIFT_GRID = 48  # origin shifts are searched on multiples of 1/48: every 1/2, 1/3, 1/4, 1/6, 1/8 of the cell


@dataclass(frozen=True)
class Alignment:
    """x → M x + s (fractional): pred(M x + s) is the description of pred that best matches truth."""

    cc: float
    matrix: np.ndarray  # (3, 3) int
    shift: np.ndarray  # (3,) fractional


@dataclass(frozen=True)
class SiteScores:
    """Of the map's N strongest local maxima (N = atoms in the cell): recall, the fraction of atoms
    with one of them within SITE_RADIUS_A; recall_z, the same weighted by Z; precision, the fraction
    of them within SITE_RADIUS_A of an atom.

    Ranking by height finds light atoms beside heavy ones (O beside Pb), where a threshold at a
    fraction of the range does not, and only N maxima count, so a noisy map with maxima everywhere
    does not find every atom by chance (every maximum above mean + σ did: 0.75–1.0 recall at 0
    precision for the bundled seed)."""

    recall: float
    recall_z: float
    precision: float


def allowed_shifts(ops: constraints.SpaceGroupOps | None, crystal_system: str,
                   m: int = SHIFT_GRID) -> dict[bytes, np.ndarray]:
    """For each holohedry operation M (key M.tobytes(), int64): the shifts s (K, 3) on the m-grid
    (integers, s/m fractional) such that x → M x + s maps the truth to an equally valid description.

    With the space group: the pairs that normalise it, i.e. x → M x + s carries every operation of the
    group onto an operation of the group (the affine normaliser restricted to the lattice's holohedry:
    origin shifts, and the axis permutations that keep the setting), plus each of them inverted
    (the enantiomorph, which a powder pattern cannot tell apart). Without it (ops None): every
    holohedry operation with every shift, a superset.
    """
    if ops is None:
        return _allowed_shifts(None, None, crystal_system, m)
    return _allowed_shifts(ops.rotations.astype(np.int64).tobytes(), np.round(ops.translations, 6).tobytes(),
                           crystal_system, m)


@cache
def _allowed_shifts(rotations: bytes | None, translations: bytes | None, crystal_system: str,
                    m: int) -> dict[bytes, np.ndarray]:
    grid = np.stack(np.meshgrid(*[np.arange(m)] * 3, indexing="ij"), -1).reshape(-1, 3)
    holohedry = [mat.astype(np.int64) for mat in point_operations(crystal_system)]
    if rotations is None:
        return {mat.tobytes(): grid for mat in holohedry}
    rots = np.frombuffer(rotations, dtype=np.int64).reshape(-1, 3, 3)
    trans = np.frombuffer(translations, dtype=np.float64).reshape(-1, 3) * m
    if not np.allclose(trans, np.round(trans), atol=1e-4):
        raise ValueError(f"the group's translations are not multiples of 1/{m}")
    trans = np.round(trans).astype(np.int64)  # in units of 1/m
    weights = np.array([m * m, m, 1])  # a translation (units of 1/m, mod m) as one integer
    targets_of: dict[bytes, list[int]] = {}
    for r, t in zip(rots, trans):
        targets_of.setdefault(r.tobytes(), []).append(int((t % m) @ weights))
    generators = _generators(rots)
    out: dict[bytes, set[tuple[int, int, int]]] = {}
    for mat in holohedry:
        inverse = np.round(np.linalg.inv(mat)).astype(np.int64)
        if any((mat @ r @ inverse).tobytes() not in targets_of for r in rots):
            continue
        shifts = grid
        for r, t in zip(rots[generators], trans[generators]):
            conjugate = mat @ r @ inverse
            moved = mat @ t + np.rint(shifts @ (np.eye(3) - conjugate).T).astype(np.int64)  # float: BLAS
            shifts = shifts[np.isin((moved % m) @ weights, targets_of[conjugate.tobytes()])]
            if not len(shifts):
                break
        for s in shifts:
            for sign in (1, -1):
                out.setdefault((sign * mat).tobytes(), set()).add(tuple((sign * s) % m))
    return {k: np.array(sorted(v), dtype=np.int64).reshape(-1, 3) for k, v in out.items()}


def _generators(rotations: np.ndarray) -> np.ndarray:
    """Indices of operations that generate the group modulo the lattice: the pure translations
    (centring, last) and, most origin-pinning first (largest rank of R − I), each operation whose
    rotation the earlier ones do not generate. A map that conjugates these into the group conjugates all."""
    order = np.argsort([-np.linalg.matrix_rank(r - np.eye(3)) for r in rotations], kind="stable")
    chosen: list[int] = []
    generated = {np.eye(3, dtype=np.int64).tobytes()}
    for i in order:
        if rotations[i].tobytes() not in generated:
            chosen.append(i)
            generated = {m.tobytes() for m in _close_group([rotations[j] for j in chosen])}
    centring = [i for i in order if not np.any(rotations[i] - np.eye(3, dtype=np.int64))]
    return np.array(chosen + centring, dtype=int)


def _band_limited_spectrum(values: np.ndarray) -> np.ndarray:
    """FFT of the grid minus its mean, with the unpaired Nyquist planes of an even grid removed."""
    spectrum = np.fft.fftn(values - values.mean())
    n = values.shape[0]
    if n % 2 == 0:
        spectrum[n // 2] = spectrum[:, n // 2] = spectrum[:, :, n // 2] = 0
    return spectrum


def _operated(values: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """The grid g(x) = values(M x) (exact: integer M maps grid points onto grid points)."""
    n = values.shape[0]
    ijk = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1)
    idx = (ijk @ mat.T) % n
    return values[idx[..., 0], idx[..., 1], idx[..., 2]]


def best_alignment(pred: np.ndarray, truth: np.ndarray, ops: constraints.SpaceGroupOps | None,
                   crystal_system: str, m: int = SHIFT_GRID) -> Alignment:
    """The correlation coefficient of pred with truth (n³ grids, fractional i/n; pred resampled to
    n when its size differs), maximised over the allowed descriptions of pred (``allowed_shifts``).

    For each M the correlation at every shift on the m-grid comes from one FFT of the product of
    the two spectra (the maps' Fourier interpolants, so shifts finer than the grid are exact).
    A flat map has no variance and correlates 0.
    """
    truth = np.asarray(truth, dtype=np.float64)
    n = truth.shape[0]
    pred = np.asarray(pred, dtype=np.float64)
    if pred.shape != truth.shape:
        pred = resample_fractional(pred, n)
    t_spec = _band_limited_spectrum(truth)
    t_norm = math.sqrt(float(np.sum(np.abs(t_spec) ** 2)))
    freq = np.fft.fftfreq(n, 1.0 / n).astype(int)
    index = np.ix_(freq % m, freq % m, freq % m)
    best = Alignment(0.0, np.eye(3, dtype=np.int64), np.zeros(3))
    if np.ptp(pred) <= 1e-12 * max(float(np.abs(pred).max()), 1e-300) or t_norm == 0:
        return best  # a flat map matches nothing
    for key, shifts in allowed_shifts(ops, crystal_system, m).items():
        mat = np.frombuffer(key, dtype=np.int64).reshape(3, 3)
        p_spec = _band_limited_spectrum(_operated(pred, mat))
        norm = math.sqrt(float(np.sum(np.abs(p_spec) ** 2))) * t_norm
        product = np.zeros((m, m, m), dtype=complex)
        product[index] = p_spec * np.conj(t_spec)
        corr = np.fft.ifftn(product).real * m ** 3 / norm
        # the shift u of pred(M·) is s = M u of pred
        u = (shifts @ np.round(np.linalg.inv(mat)).astype(np.int64).T) % m
        values = corr[u[:, 0], u[:, 1], u[:, 2]]
        k = int(np.argmax(values))
        if values[k] > best.cc:
            best = Alignment(float(values[k]), mat, shifts[k] / m)
    return best


def aligned(pred: np.ndarray, alignment: Alignment, n: int | None = None) -> np.ndarray:
    """pred(M x + s) on an n³ grid (default pred's), by Fourier shift of the operated grid."""
    pred = np.asarray(pred, dtype=np.float64)
    if n is not None and pred.shape[0] != n:
        pred = resample_fractional(pred, n)
    n = pred.shape[0]
    spectrum = np.fft.fftn(_operated(pred, alignment.matrix))
    if n % 2 == 0:
        spectrum[n // 2] = spectrum[:, n // 2] = spectrum[:, :, n // 2] = 0
    u = np.linalg.inv(alignment.matrix) @ alignment.shift
    freq = np.fft.fftfreq(n, 1.0 / n)
    phase = np.exp(2j * np.pi * (freq[:, None, None] * u[0] + freq[None, :, None] * u[1] + freq[None, None, :] * u[2]))
    return np.fft.ifftn(spectrum * phase).real


def local_maxima(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Periodic local maxima of a grid, strongest first: (K, 3) fractional positions refined by a
    parabola through each maximum and its neighbours along each axis, and (K,) heights."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    peak = (maximum_filter(values, size=3, mode="wrap") == values) & (values > values.min())
    ijk = np.argwhere(peak)
    heights = values[peak]
    offsets = np.zeros(ijk.shape)
    for axis in range(3):
        step = np.zeros(3, dtype=int)
        step[axis] = 1
        lo = values[tuple(((ijk - step) % n).T)]
        hi = values[tuple(((ijk + step) % n).T)]
        curvature = lo - 2 * heights + hi
        offsets[:, axis] = np.where(curvature < 0, 0.5 * (lo - hi) / np.where(curvature < 0, curvature, -1), 0)
    order = np.argsort(-heights)
    return ((ijk + np.clip(offsets, -0.5, 0.5)) / n)[order], heights[order]


def _near(points: np.ndarray, atoms: np.ndarray, lattice: np.ndarray, radius_A: float) -> np.ndarray:
    """(P, A) True where point p lies within radius_A (Å) of atom a or one of its lattice images."""
    if not len(points) or not len(atoms):
        return np.zeros((len(points), len(atoms)), dtype=bool)
    diff = points[:, None, :] - atoms[None]
    diff -= np.round(diff)
    images = np.array(list(itertools.product((-1, 0, 1), repeat=3)))
    cart = (diff[:, :, None, :] + images[None, None]) @ lattice
    return np.linalg.norm(cart, axis=-1).min(axis=2) <= radius_A


def site_scores(pred: np.ndarray, structure: Structure, radius_A: float = SITE_RADIUS_A) -> SiteScores:
    """Recall, Z-weighted recall and precision of an aligned prediction's maxima (``SiteScores``)
    against the atoms of ``structure`` (the cell the grid spans, fractional i/n)."""
    positions, _ = local_maxima(pred)
    atoms = structure.frac_coords
    z = np.array([site.specie.Z for site in structure], dtype=float)
    lattice = structure.lattice.matrix
    near = _near(positions[:len(atoms)], atoms, lattice, radius_A)
    found, hits = near.any(axis=0), near.any(axis=1)
    return SiteScores(float(found.mean()), float((z * found).sum() / z.sum()), float(hits.sum() / len(atoms)))
