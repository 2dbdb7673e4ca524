"""Powder patterns from crystal structures: sticks (as pymatgen's XRDCalculator) and full profiles.

Angles are degrees 2θ, wavelengths and d in Å. A profile is a sum of Thompson–Cox–Hastings
pseudo-Voigt peaks at Kα1 and Kα2, with Lorentz–polarisation, zero shift, sample displacement,
Bérar–Baldinozzi peak asymmetry (all of them the model.instrument.Instrument's), and of the
Sample's March–Dollase preferred orientation, Chebyshev background and Poisson noise.

The profile formula exists once, in torch (``profile_torch``, batched, for training on GPU and
refinement with autograd); ``profile`` and ``simulate_pattern`` call it on CPU tensors.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pymatgen.analysis.diffraction.core import AbstractDiffractionPatternCalculator
from pymatgen.core import Structure

from model.errors import InputError
from model.files import atomic_write
from model.instrument import (
    Instrument,
    bragg_d,
    bragg_theta,
    displacement_deg,
    tch,
    tch_components,
)
from model.pattern import Pattern, Provenance, Wavelength
from model.scattering import Reflections, metric_family, phase_scales, reflections

__all__ = ["Reflections", "Sample", "Sticks", "lorentz_polarisation", "march_dollase",
           "march_dollase_factor", "params_torch", "peaks_torch", "profile", "profile_torch",
           "random_dac_params", "random_lab_params", "reflections", "simulate_pattern", "sticks"]

# Reflections outside the scan still put tails into it; simulate this far beyond its end (degrees).
_TAIL_MARGIN_DEG = 2.0
# Peaks are evaluated within ±this many FWHM of their centre, as Rietveld programs cut them off.
# The Lorentzian is lowered by its value at the cut, so the profile stays continuous as peaks
# move or widen (smooth least squares), and rescaled to keep unit area.
_WINDOW_FWHM = 20.0
_LORENTZ_AT_CUT = 1 / (1 + (2 * _WINDOW_FWHM) ** 2)  # relative to its peak
_LORENTZ_KEPT = (2 / math.pi) * (math.atan(2 * _WINDOW_FWHM) - 2 * _WINDOW_FWHM * _LORENTZ_AT_CUT)
# Entries of the (batch × reflections × window) peak array evaluated at once, to bound memory,
# and reflections per group (a group is as wide as its widest peak window).
_CHUNK = 1 << 24
_GROUP = 128
# Highest Bragg angle simulated: LP and the Lorentzian width diverge at 2θ = 180°.
_SIN_THETA_MAX = math.sin(math.radians(179.5 / 2))


def lorentz_polarisation(theta_rad, in_plane=0.5):
    """2·((1 − p) + p·cos²2θ) / (sin²θ cosθ); NumPy array or torch tensor of θ (radians).

    p is the fraction of the incident intensity polarised in the diffraction plane: 0.5 for an
    unpolarised tube, giving pymatgen's (1 + cos²2θ) / (sin²θ cosθ); near 0 for synchrotron
    radiation diffracted in the vertical plane.
    """
    xp = torch if isinstance(theta_rad, torch.Tensor) else np
    return 2 * ((1 - in_plane) + in_plane * xp.cos(2 * theta_rad) ** 2) / (xp.sin(theta_rad) ** 2 * xp.cos(theta_rad))


@dataclass(frozen=True, eq=False)
class Sticks:
    """Stick pattern at one wavelength: 2θ (degrees, increasing), intensity (max 100, LP included)."""

    two_theta: np.ndarray
    intensity: np.ndarray
    reflections: Reflections
    wavelength_A: float

    d = property(lambda self: self.reflections.d, doc="d (Å)")
    hkl = property(lambda self: self.reflections.hkl, doc="(n, 3) representative hkl")
    multiplicity = property(lambda self: self.reflections.multiplicity)
    f2 = property(lambda self: self.reflections.f2, doc="mean |F|² (e²)")

    def __len__(self) -> int:
        return self.two_theta.size

    def write_csv(self, path: str | Path) -> None:
        """CSV with columns two_theta,intensity,d,h,k,l,multiplicity, written atomically."""
        with atomic_write(path) as out:
            out.write("two_theta,intensity,d,h,k,l,multiplicity\n")
            for tt, inten, d, (h, k, l), m in zip(self.two_theta, self.intensity, self.d,
                                                  self.hkl, self.multiplicity):
                out.write(f"{tt:.5f},{inten:.4f},{d:.6f},{h},{k},{l},{m}\n")


def sticks(structure: Structure, wavelength: Wavelength | float,
           two_theta_range: tuple[float, float] = (0, 90),
           biso: float | dict[str, float] | None = None) -> Sticks:
    """Sticks at Kα1 (or the single wavelength) in two_theta_range, as XRDCalculator.get_pattern."""
    lam = (wavelength if isinstance(wavelength, Wavelength) else Wavelength(float(wavelength))).ka1
    lo, hi = (float(t) for t in two_theta_range)
    if not (0 <= lo < hi <= 180):
        raise InputError(None, f"2θ range {lo:g}–{hi:g}° must satisfy 0 ≤ min < max ≤ 180")
    refl = reflections(structure, bragg_d(hi, lam), biso)
    theta = bragg_theta(refl.d, lam)
    two_theta = np.degrees(2 * theta)
    intensity = refl.multiplicity * refl.f2 * lorentz_polarisation(theta)
    in_range = (two_theta >= lo) & (two_theta <= hi)
    intensity = 100 * intensity / intensity[in_range].max() if in_range.any() else intensity
    keep = in_range & (intensity > AbstractDiffractionPatternCalculator.SCALED_INTENSITY_TOL)
    return Sticks(two_theta[keep], intensity[keep], refl.subset(keep), lam)


@dataclass(frozen=True)
class Sample:
    """What the specimen adds to a simulated pattern (the instrument is model.instrument's):
    background, Chebyshev coefficients over the scan (2θ mapped to −1…1) as fractions of the
    strongest peak; March–Dollase ratio r along reciprocal direction po_direction (1 = random);
    scale, the height of the strongest point; counts, the Poisson counts there (None = no noise)."""

    background: tuple[float, ...] = (0.03, -0.01, 0.005)
    po_ratio: float = 1.0
    po_direction: tuple[int, int, int] = (0, 0, 1)
    scale: float = 1000.0
    counts: float | None = None

    def __post_init__(self):
        if not all(math.isfinite(v) for v in (self.po_ratio, self.scale, *self.background)):
            raise InputError(None, "sample parameters must be finite")
        if self.po_ratio <= 0 or not any(self.po_direction):
            raise InputError(None, "March–Dollase ratio must be > 0 along a non-zero direction")
        if self.scale <= 0:
            raise InputError(None, "scale must be > 0")
        if self.counts is not None and not (self.counts > 0 and math.isfinite(self.counts)):
            raise InputError(None, f"counts {self.counts!r} must be a positive number or None")


def random_lab_params(rng: np.random.Generator, wavelength: Wavelength) -> tuple[Instrument, Sample]:
    """Randomised but realistic laboratory conditions at ``wavelength`` (for one draw in five a
    Kα1-monochromated instrument: its Kα2 ratio 0), for training augmentation and benchmarks."""
    u = rng.uniform(0.0, 0.03)
    w = rng.uniform(0.001, 0.015)
    v = -rng.uniform(0.0, 0.9) * 2 * math.sqrt(u * w)  # keeps u·t² + v·t + w > 0
    c0 = rng.uniform(0.0, 0.3)
    shape = rng.uniform(-1, 1, size=int(rng.integers(0, 5)))
    shape *= c0 / max(1.0, np.abs(shape).sum() / 0.8)  # |Σ cₖTₖ| < c0: background stays ≥ 0
    oriented = rng.random() < 0.5
    x, y = rng.uniform(0.0, 0.08), rng.uniform(0.0, 0.08)
    zero, displacement_mm = rng.uniform(-0.05, 0.05), rng.normal(0.0, 0.05)
    ka2 = bool(rng.random() < 0.8)
    instrument = Instrument(wavelength if ka2 else dataclasses.replace(wavelength, ratio=0.0), u=u, v=v, w=w, x=x, y=y,
                            zero=zero, displacement=displacement_deg(displacement_mm))
    return instrument, Sample(
        background=(c0, *shape.tolist()),
        po_ratio=float(np.exp(rng.uniform(-0.4, 0.4))) if oriented else 1.0,
        po_direction=[(0, 0, 1), (1, 0, 0), (0, 1, 0), (1, 1, 0), (1, 1, 1)][rng.integers(5)],
        scale=1000.0, counts=float(10 ** rng.uniform(2.5, 5.5)),
    )


def random_dac_params(rng: np.random.Generator) -> tuple[Instrument, Sample]:
    """Randomised diamond-anvil-cell conditions: monochromatic λ 0.3–0.7 Å (synchrotron or a
    Kα1-filtered Mo/Ag tube), the cell's opening cuts 2θ at 18–22°, lines broadened by
    non-hydrostatic strain (wider in d than a lab powder's), a strong diamond Compton background,
    few counts and texture. The instrument's two_theta_range is the measured scan (from 3°)."""
    wavelength = Wavelength(float(rng.uniform(0.3, 0.7)))
    # strain broadening grows as tanθ (U, Y); at 2θ ≈ 10° and λ 0.4 Å the total FWHM is ≈ 0.06–0.2°
    u, w = rng.uniform(0.0, 0.5), rng.uniform(0.002, 0.02)
    x, y = rng.uniform(0.0, 0.04), rng.uniform(0.0, 0.3)
    synchrotron = bool(rng.random() < 0.7)
    instrument = Instrument(wavelength, u=u, v=0.0, w=w, x=x, y=y, zero=rng.uniform(-0.01, 0.01),
                            polarisation=rng.uniform(0.0, 0.1) if synchrotron else 0.5,
                            two_theta_range=(3.0, float(rng.uniform(18.0, 22.0))))
    c0 = rng.uniform(0.05, 0.5)
    shape = rng.uniform(-1, 1, size=int(rng.integers(0, 4)))
    shape *= c0 / max(1.0, np.abs(shape).sum() / 0.8)  # |Σ cₖTₖ| < c0: background stays ≥ 0
    textured = rng.random() < 0.5
    return instrument, Sample(
        background=(c0, *shape.tolist()),
        po_ratio=float(np.exp(rng.uniform(-0.5, 0.5))) if textured else 1.0,
        po_direction=[(0, 0, 1), (1, 0, 0), (0, 1, 0), (1, 1, 0), (1, 1, 1)][rng.integers(5)],
        scale=1000.0, counts=float(10 ** rng.uniform(3.0, 4.5)),
    )


# low-index reciprocal directions tried for preferred orientation, by the search and the refinement;
# the diagonals too: texture along a diagonal of a high-symmetry cell is along an axis of a subgroup's
# cell, and without them the subgroup would fit better and the symmetry found would be too low
PO_DIRECTIONS = ((0, 0, 1), (1, 0, 0), (0, 1, 0), (1, 1, 0), (1, 0, 1), (0, 1, 1), (1, 1, 1))


def distinct_po_directions(laue: np.ndarray) -> list[tuple[int, int, int]]:
    """The directions of PO_DIRECTIONS that no operation of ``laue`` ((N, 3, 3) integer rotations
    acting on hkl) maps onto one listed before."""
    directions: list[tuple[int, int, int]] = []
    for direction in PO_DIRECTIONS:
        images = {tuple(int(v) for v in np.asarray(direction) @ r) for r in laue}
        if not any(d in images for d in directions):
            directions.append(direction)
    return directions


def march_dollase(refl: Reflections, ratio: float, direction: tuple[int, int, int]) -> np.ndarray:
    """(R,) March–Dollase factor of each line for ``ratio`` along reciprocal ``direction``."""
    if ratio == 1.0 or len(refl) == 0:
        return np.ones(len(refl))
    reciprocal = np.linalg.inv(refl.lattice).T
    g = metric_family(refl.hkl, refl.lattice) @ reciprocal
    n = np.asarray(direction, dtype=float) @ reciprocal
    cos2 = (g @ n) ** 2 / (np.einsum("rsi,rsi->rs", g, g) * (n @ n))
    return march_dollase_factor(cos2, ratio)


def march_dollase_factor(cos2, ratio):
    """(r²cos²α + sin²α/r)^(−3/2) averaged over the last axis (a line's members); NumPy or torch.

    cos2: cos²α between each member's scattering vector and the preferred-orientation direction;
    ratio r: 1 = random powder, < 1 plates, > 1 needles along that direction. Keeps the total
    intensity over all orientations.
    """
    return ((ratio ** 2 * cos2 + (1 - cos2) / ratio) ** -1.5).mean(-1)


def params_torch(instruments: list[Instrument], samples: list[Sample] | None = None,
                 dtype=torch.float32, device=None) -> dict[str, torch.Tensor]:
    """The (B,) tensors profile_torch takes, one Instrument per row, and with ``samples`` their
    background (B, K) and counts.

    Preferred orientation is not among them: it depends on hkl, so it goes into the weights
    (multiply by ``march_dollase``).
    """
    doublets = [i.doublet for i in instruments]
    columns = {
        **{k: [getattr(i, k) for i in instruments] for k in ("u", "v", "w", "x", "y", "zero", "polarisation")},
        "shift_cos": [i.displacement for i in instruments],
        "asymmetry": [list(i.asymmetry) for i in instruments],
        "ka2_ratio": [0.0 if d is None else d[1] for d in doublets],
        "ka2_over_ka1": [1.0 if d is None else d[0] / i.wavelength.ka1 for i, d in zip(instruments, doublets)],
    }
    out = {k: torch.tensor(v, dtype=dtype, device=device) for k, v in columns.items()}
    if samples is not None:
        out["counts"] = torch.tensor([s.counts or 0.0 for s in samples], dtype=dtype, device=device)
        n_background = max(len(s.background) for s in samples)
        out["background"] = torch.tensor([list(s.background) + [0.0] * (n_background - len(s.background))
                                          for s in samples], dtype=dtype, device=device)
    return out


def profile_torch(d: torch.Tensor, weight: torch.Tensor, two_theta: torch.Tensor,
                  wavelength_A: torch.Tensor, params: dict[str, torch.Tensor],
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, G) profiles on two_theta (G,) degrees, increasing, each normalised to max 1 (before noise).

    d, weight, wavelength_A and the profile parameters as ``peaks_torch``; params may add
    background (B, K) Chebyshev coefficients relative to the strongest peak and counts (B,)
    Poisson counts at the maximum (0 = no noise). Differentiable in all but counts.
    """
    two_theta = two_theta.to(d.dtype)
    peaks = peaks_torch(d, weight, two_theta, wavelength_A, params)
    y = peaks / peaks.amax(1, keepdim=True).clamp_min(torch.finfo(d.dtype).tiny)
    if "background" in params and params["background"].shape[1] > 0:
        y = y + _chebyshev(two_theta, params["background"].to(d.dtype))
        y = y / y.amax(1, keepdim=True).clamp_min(torch.finfo(d.dtype).tiny)
    if "counts" in params and bool((params["counts"] > 0).any()):
        counts = params["counts"].to(d.dtype)[:, None]
        safe = torch.where(counts > 0, counts, torch.ones_like(counts))
        noisy = torch.poisson((y * safe).detach().clamp_min(0), generator=generator) / safe
        y = torch.where(counts > 0, noisy, y)
    return y


def peaks_torch(d: torch.Tensor, weight: torch.Tensor, two_theta: torch.Tensor,
                wavelength_A: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, G) Σ weight·LP·peak shape at Kα1 and Kα2 on two_theta (G,) degrees, not normalised.

    d (B, R) Å and weight (B, R) = multiplicity·|F|² (times any preferred-orientation factor),
    0 for padding; wavelength_A (B,) is Kα1. params: (B,) tensors u, v, w (deg²), x, y, zero
    (deg), ka2_ratio (I(Kα2)/I(Kα1), 0 = none), ka2_over_ka1 (λ ratio); optional shift_cos
    (deg, peak shift ×cosθ from sample displacement), asymmetry (B, 2) Bérar–Baldinozzi
    (P1, P2) and polarisation (fraction in the diffraction plane, 0.5 when absent). Differentiable in d, weight and every parameter; each peak has area weight·LP.
    """
    two_theta = two_theta.to(d.dtype)
    peaks = _peaks(d, weight, wavelength_A, two_theta, params)
    ka2 = params["ka2_ratio"]
    if ka2.requires_grad or bool((ka2 > 0).any()):
        peaks = peaks + _peaks(d, weight * ka2[:, None], wavelength_A * params["ka2_over_ka1"],
                               two_theta, params)
    return peaks


def bragg_theta_torch(d_A: torch.Tensor, wavelength_A: torch.Tensor) -> torch.Tensor:
    """model.instrument.bragg_theta for torch tensors (differentiable); the caller keeps d within reach."""
    return torch.arcsin(wavelength_A / (2 * d_A))


def _peaks(d, weight, wavelength_A, two_theta, p) -> torch.Tensor:
    """Σ_reflections weight·LP·pseudo-Voigt at one wavelength: (B, G)."""
    lam = wavelength_A.to(d.dtype)[:, None]
    valid = (weight > 0) & (d > 0) & (lam / (2 * d.clamp_min(1e-12)) < _SIN_THETA_MAX)
    theta = bragg_theta_torch(torch.where(valid, d, lam), lam)  # padding sits harmlessly at 2θ = 60°
    cos_theta, tan_theta = torch.cos(theta), torch.tan(theta)
    in_plane = p["polarisation"].to(d.dtype)[:, None] if "polarisation" in p else 0.5
    amplitude = torch.where(valid, weight, torch.zeros_like(weight)) * lorentz_polarisation(theta, in_plane)

    col = {k: p[k].to(d.dtype)[:, None] for k in ("u", "v", "w", "x", "y", "zero")}
    shift = p["shift_cos"].to(d.dtype)[:, None] * cos_theta if "shift_cos" in p else 0.0
    centre = torch.rad2deg(2 * theta) + col["zero"] + shift
    gaussian2, lorentzian = tch_components(tan_theta, cos_theta, col["u"], col["v"], col["w"],
                                                                col["x"], col["y"])
    # clamped: a Gaussian width the parameters would make imaginary is ~0 (refinement stays smooth)
    fwhm, eta = tch(gaussian2.clamp_min(1e-10).sqrt(), lorentzian.clamp_min(0))

    # pseudo-Voigt = η·L + (1 − η)·G with area 1; per-reflection factors first, so the big
    # (batch, reflections, window) arrays see few operations
    inverse_half = 2 / fwhm
    lorentz = amplitude * eta * inverse_half / (math.pi * _LORENTZ_KEPT)
    gauss = amplitude * (1 - eta) * inverse_half * math.sqrt(math.log(2) / math.pi)
    asymmetry = p.get("asymmetry")
    if asymmetry is not None and not (asymmetry.requires_grad or bool(asymmetry.any())):
        asymmetry = None
    if asymmetry is not None:
        # Bérar–Baldinozzi: odd Hermite functions of z = Δ2θ/FWHM, so each peak keeps its area
        p1 = asymmetry[:, 0, None].to(d.dtype) / tan_theta
        p2 = asymmetry[:, 1, None].to(d.dtype) / tan_theta
    reach = (_WINDOW_FWHM * fwhm).detach()
    first = torch.searchsorted(two_theta, (centre.detach() - reach).contiguous())
    end = torch.searchsorted(two_theta, (centre.detach() + reach).contiguous(), right=True)
    span = torch.where(valid, end - first, torch.zeros_like(first))  # padding costs nothing
    batch, n_refl = d.shape
    total = torch.zeros(batch, two_theta.numel(), dtype=d.dtype, device=d.device)
    # reflections in groups, each as wide as its widest window (widths grow with 2θ)
    widest = int(span.max()) if n_refl else 0
    rows = max(1, min(_GROUP, _CHUNK // max(1, batch * widest)))
    for i in range(0, n_refl, rows):
        cut = slice(i, i + rows)
        width = int(span[:, cut].max())
        if width == 0:
            continue
        index = first[:, cut, None] + torch.arange(width, device=d.device)
        inside = index < (first + span)[:, cut, None]
        index = index.clamp_max(two_theta.numel() - 1)
        half_widths = (two_theta[index] - centre[:, cut, None]) * inverse_half[:, cut, None]
        z = half_widths ** 2
        values = (lorentz[:, cut, None] * (1 / (1 + z) - _LORENTZ_AT_CUT)
                  + gauss[:, cut, None] * torch.exp(-math.log(2) * z))
        if asymmetry is not None:
            t = half_widths / 2
            fa = 2 * t * torch.exp(-t ** 2)
            fb = 2 * (2 * t ** 2 - 3) * fa
            # clamped: a strong coefficient at very low angle must not make a peak negative
            values = values * (1 + p1[:, cut, None] * fa + p2[:, cut, None] * fb).clamp_min(0)
        values = torch.where(inside, values, torch.zeros_like(values))
        total = total.scatter_add(1, index.reshape(batch, -1), values.reshape(batch, -1))
    return total


def _chebyshev(two_theta: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """(B, G) Σₖ cₖ·Tₖ(x), x = 2θ mapped linearly onto −1…1 over the scan."""
    span = (two_theta[-1] - two_theta[0]).clamp_min(1e-12)
    x = 2 * (two_theta - two_theta[0]) / span - 1
    terms = [torch.ones_like(x), x]
    while len(terms) < coeffs.shape[1]:
        terms.append(2 * x * terms[-1] - terms[-2])
    return coeffs @ torch.stack(terms[:coeffs.shape[1]])


def profile(two_theta: np.ndarray, sticks_or_reflections: Sticks | Reflections,
            instrument: Instrument, sample: Sample | None = None,
            rng: np.random.Generator | None = None) -> np.ndarray:
    """Full profile (strongest point = sample.scale) of the reflections on two_theta (degrees).

    Each reflection appears at Kα1 and, where the instrument has a Kα2, there too; ``rng`` draws
    the Poisson noise when sample.counts is set.
    """
    refl = getattr(sticks_or_reflections, "reflections", sticks_or_reflections)
    return _profile(two_theta, [refl], [1.0], instrument, sample, rng)


def _profile(two_theta: np.ndarray, phases: Sequence[Reflections], scales: Sequence[float],
             instrument: Instrument, sample: Sample | None, rng: np.random.Generator | None) -> np.ndarray:
    """``profile`` of several phases' reflections, each phase's lines times its relative scale."""
    sample = sample or Sample()
    _require_real_widths(instrument)
    two_theta = _grid(two_theta)
    d = np.concatenate([refl.d for refl in phases])
    weight = np.concatenate([scale * refl.multiplicity * refl.f2 * march_dollase(refl, sample.po_ratio,
                                                                                 sample.po_direction)
                             for refl, scale in zip(phases, scales)])
    generator = None
    if sample.counts is not None:
        rng = rng if rng is not None else np.random.default_rng()
        generator = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
    with torch.no_grad():
        y = profile_torch(torch.from_numpy(d.astype(float))[None],
                          torch.from_numpy(weight.astype(float))[None],
                          torch.from_numpy(two_theta),
                          torch.tensor([instrument.wavelength.ka1], dtype=torch.float64),
                          params_torch([instrument], [sample], dtype=torch.float64),
                          generator)
    return sample.scale * y[0].numpy()


def simulate_pattern(structure: Structure | Sequence[Structure], instrument: Instrument, two_theta: np.ndarray,
                     sample: Sample | None = None, rng: np.random.Generator | None = None,
                     biso: float | dict[str, float] | None = None,
                     weight_fractions: Sequence[float] | None = None) -> Pattern:
    """A simulated powder Pattern (provenance format "simulated") on the given 2θ grid (degrees),
    stating the instrument's wavelength (without Kα2 where its ratio is 0, a monochromated one).
    Several structures make a mixture at ``weight_fractions`` (mass fractions, Hill–Howard scales:
    model.scattering.phase_scales), all of one instrument and sample."""
    structures = [structure] if isinstance(structure, Structure) else list(structure)
    fractions = [1.0] * len(structures) if weight_fractions is None else list(weight_fractions)
    if len(fractions) != len(structures) or not all(f >= 0 for f in fractions) or not sum(fractions) > 0:
        raise InputError(None, f"{len(structures)} phases need as many weight fractions ≥ 0, not {fractions}")
    sample = sample or Sample()
    two_theta = _grid(two_theta)
    wavelength = instrument.wavelength
    longest = max(wavelength.ka1, wavelength.ka2 or 0.0)
    d_min = bragg_d(min(two_theta[-1] + _TAIL_MARGIN_DEG, 179.5), longest)
    phases = [reflections(s, d_min, biso) for s in structures]
    scales = phase_scales(fractions, structures) if len(structures) > 1 else [1.0]
    intensity = _profile(two_theta, phases, scales, instrument, sample, rng)
    metadata = {"formula": " + ".join(s.composition.reduced_formula for s in structures),
                "profile": {**dataclasses.asdict(instrument), **dataclasses.asdict(sample)}}
    # a monochromated (Kα1-only) pattern must not claim a doublet, or peak fits would model one
    return Pattern(two_theta, intensity, wavelength=wavelength if instrument.doublet else wavelength.monochromatic(),
                   provenance=Provenance(format="simulated", metadata=metadata))


def _require_real_widths(instrument: Instrument) -> None:
    """Refuses U, V, W that make the Gaussian FWHM² = U·t² + V·t + W ≤ 0 at some tanθ = t > 0."""
    u, v, w = instrument.u, instrument.v, instrument.w
    if v < 0 and v ** 2 >= 4 * u * w:
        raise InputError(None, f"u, v, w = {u:g}, {v:g}, {w:g} give a non-positive Gaussian width")


def _grid(two_theta: np.ndarray) -> np.ndarray:
    """The 2θ grid as floats, refused unless it is ≥ 2 strictly increasing points in 0–180°."""
    two_theta = np.asarray(two_theta, dtype=float)
    if two_theta.ndim != 1 or two_theta.size < 2 or not np.all(np.isfinite(two_theta)):
        raise InputError(None, "a 2θ grid needs at least 2 finite points")
    if np.any(np.diff(two_theta) <= 0):
        raise InputError(None, "2θ grid is not strictly increasing")
    if two_theta[0] < 0 or two_theta[-1] >= 180:
        raise InputError(None, f"2θ {two_theta[0]:g}–{two_theta[-1]:g}° is outside 0–180°")
    return two_theta
