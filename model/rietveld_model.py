"""The Rietveld model: the calculated pattern of a parameter vector, its weighted residuals and
their Jacobian (GSAS-II's getPowderProfile and dervRefine).

The calculated pattern is model.simulate's: |F|² from structure_factor_sq_torch, times the
March–Dollase factor, and peaks from peaks_torch (LP, Kα doublet, shifts, asymmetry), each phase
at its exp(scale), plus a Chebyshev background. Residuals are √w·(y_obs − y_calc) with w = 1/σ²
(``measurement_weights``), followed by the anti-bump restraints where they are on. The Jacobian
is exact for the linear scales and background, by forward differences of the torch model for the
rest (measured 12× faster here than torch.func.jvp, whose forward mode goes through slow
decompositions of the profile's operations).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy.optimize import lsq_linear

from model import scattering, simulate
from model.instrument import doublet_of
from model.pattern import Pattern, Wavelength
from model.rietveld_layout import BACKGROUND_TERMS, Layout, Phase

CONTACT_SIGMA_A = 0.05  # Å a contact falls short by to cost χ² as much as all the pattern's points at GoF 1

_IMAGES = torch.tensor(list(itertools.product((-1, 0, 1), repeat=3)), dtype=torch.float64)


class RietveldModel:
    """The measured points (excluded regions left out) and the model of them, for a Layout.

    ``wavelength`` is the radiation modelled: the pattern's, or the Kα doublet behind a stated
    mean while the refinement tries or keeps it."""

    def __init__(self, pattern: Pattern, layout: Layout, excluded: Sequence[tuple[float, float]] = (),
                 restrain_contacts: bool = False):
        self.pattern = pattern
        self.layout = layout
        self.phases = layout.phases
        self.wavelength: Wavelength = pattern.wavelength
        self.keep = keep = pattern.included(excluded)
        self.x = torch.tensor(pattern.two_theta[keep])
        self.y_obs = torch.tensor(pattern.intensity[keep])
        self.sqrt_w = torch.tensor(np.sqrt(measurement_weights(pattern)[keep]))
        self.contact_weight = float(np.sqrt(keep.sum())) / CONTACT_SIGMA_A if restrain_contacts else 0.0

    @property
    def doublet(self) -> bool:
        """Whether Kα2 is modelled (model.instrument.doublet_of)."""
        return doublet_of(self.wavelength) is not None

    def components(self, p: torch.Tensor, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Each phase's Bragg profile at unit scale and the background, on 2θ points x."""
        params = self.profile_params(p)
        return [self.bragg(phase, p, x, params) for phase in self.phases], self.chebyshev(x) @ p[self.layout.slices["bkg"]]

    def bragg(self, phase: Phase, p: torch.Tensor, x: torch.Tensor, params: dict[str, torch.Tensor],
              lines: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """One phase's Bragg profile at unit scale on 2θ points x (one model evaluation); ``lines``:
        its (d, weight) at ``p`` (``lines``) where they are known already."""
        d, weight = self.lines(phase, p) if lines is None else lines
        return simulate.peaks_torch(d[None], weight[None], x, torch.tensor([self.wavelength.ka1]), params)[0]

    def lines(self, phase: Phase, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(R,) d (Å) and weight (line_weights) of each of the phase's families at ``p``."""
        metric = phase.metric(p)
        d = torch.einsum("ri,ij,rj->r", phase.hkl, torch.linalg.inv(metric), phase.hkl).rsqrt()
        return d, line_weights(phase, p, metric, d)

    def chebyshev(self, x: torch.Tensor) -> torch.Tensor:
        """(G, BACKGROUND_TERMS) Chebyshev polynomials of 2θ mapped onto −1…1 over the scan."""
        lo, hi = self.pattern.two_theta[0], self.pattern.two_theta[-1]
        return torch.special.chebyshev_polynomial_t(((2 * x - (lo + hi)) / (hi - lo))[:, None],
                                                    torch.arange(BACKGROUND_TERMS))

    def calculated(self, p: torch.Tensor, x: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The calculated pattern and its background on 2θ points x (the fitted points by default)."""
        bragg, bkg = self.components(p, self.x if x is None else x)
        return sum(torch.exp(p[ph.slices["scale"]][0]) * b for ph, b in zip(self.phases, bragg)) + bkg, bkg

    def residual(self, p: torch.Tensor) -> torch.Tensor:
        return self.sqrt_w * (self.y_obs - self.calculated(p)[0])

    def residuals(self, p: torch.Tensor) -> torch.Tensor:
        """What least squares minimises: the pattern's weighted residuals, then the restraints'."""
        return torch.cat([self.residual(p), self.restraints(p)])

    def chi2(self, p: np.ndarray) -> float:
        with torch.no_grad():
            return float(torch.sum(self.residual(torch.tensor(p)) ** 2))

    def too_close(self, p: np.ndarray) -> bool:
        """Whether two fully occupied atoms are closer than the anti-bump limit (CONTACT_FACTOR)."""
        with torch.no_grad():
            return any(bool(torch.any(contact_shortfalls(phase, torch.tensor(p)) > 0)) for phase in self.phases)

    def restraints(self, p: torch.Tensor) -> torch.Tensor:
        """The weighted restraint residuals least squares adds to the pattern's (none without restraints)."""
        if not self.contact_weight:
            return p.new_zeros(0)
        return self.contact_weight * torch.cat([contact_shortfalls(phase, p) for phase in self.phases])

    def profile_params(self, p: torch.Tensor) -> dict[str, torch.Tensor]:
        """The instrument part of the vector as the (1,) tensors peaks_torch takes."""
        slices = self.layout.slices
        u, v, w, x, y = p[slices["profile"]]
        doublet = doublet_of(self.wavelength)
        return {"u": u[None], "v": v[None], "w": w[None], "x": x[None], "y": y[None],
                "zero": p[slices["zero"]], "shift_cos": p[slices["displacement"]],
                "asymmetry": p[slices["asymmetry"]][None], "polarisation": p[slices["polarisation"]],
                "ka2_ratio": p[slices["ka2"]] if doublet else torch.zeros(1, dtype=p.dtype),
                "ka2_over_ka1": torch.tensor([doublet[0] / self.wavelength.ka1 if doublet else 1.0])}

    def jacobian(self, p: torch.Tensor, free: np.ndarray, values: torch.Tensor,
                 pause: Callable[[], None]) -> np.ndarray:
        """∂residuals/∂(free parameters) at ``p`` (whose ``free`` entries are ``values``); ``pause()``
        before every model evaluation. A column of a parameter only one phase depends on
        re-evaluates that phase alone."""
        index = torch.tensor(free)
        layout, background = self.layout, self.layout.slices["bkg"]
        scales = {ph.slices["scale"].start: k for k, ph in enumerate(self.phases)}
        with torch.no_grad():
            params = self.profile_params(p)
            lines = [self.lines(ph, p) for ph in self.phases]
            scaled = [torch.exp(p[ph.slices["scale"]][0]) * self.bragg(ph, p, self.x, params, known)
                      for ph, known in zip(self.phases, lines)]
            cheb = self.chebyshev(self.x)
            bkg = cheb @ p[background]
            restraints = self.restraints(p)
            base = torch.cat([self.sqrt_w * (self.y_obs - sum(scaled) - bkg), restraints])
            unrestrained = restraints.new_zeros(restraints.shape)
            columns = []
            for column, i in enumerate(free.tolist()):
                if i in scales:
                    columns.append(torch.cat([-self.sqrt_w * scaled[scales[i]], unrestrained]))
                    continue
                if background.start <= i < background.stop:
                    columns.append(torch.cat([-self.sqrt_w * cheb[:, i - background.start], unrestrained]))
                    continue
                step = 1e-6 * max(abs(float(values[column])), 1e-2)
                shifted = values.clone()
                shifted[column] += step
                moved = p.index_put((index,), shifted)
                pause()
                if i in layout.owner:
                    k = layout.owner[i]
                    phase = self.phases[k]
                    new = torch.exp(moved[phase.slices["scale"]][0]) * self.bragg(phase, moved, self.x, params)
                    columns.append(torch.cat([-self.sqrt_w * (new - scaled[k]),
                                              self.restraints(moved) - restraints]) / step)
                else:  # an instrument parameter: the lines (d, |F|²) and the restraints stay, the profiles move
                    shifted_params = self.profile_params(moved)
                    calc = sum(torch.exp(moved[ph.slices["scale"]][0]) * self.bragg(ph, moved, self.x, shifted_params, known)
                               for ph, known in zip(self.phases, lines)) + bkg
                    columns.append((torch.cat([self.sqrt_w * (self.y_obs - calc), restraints]) - base) / step)
        return torch.stack(columns, 1).numpy()

    def linear_start(self, p: np.ndarray) -> np.ndarray:
        """``p`` with the scales (≥ 0) and background by linear least squares for the rest of it."""
        with torch.no_grad():
            bragg, _ = self.components(torch.tensor(p), self.x)
            design = torch.cat([torch.stack(bragg, 1), self.chebyshev(self.x)], 1) * self.sqrt_w[:, None]
            target = (self.y_obs * self.sqrt_w).numpy()
        n = len(self.phases)
        lower = np.r_[np.zeros(n), np.full(BACKGROUND_TERMS, -np.inf)]
        coef = lsq_linear(design.numpy(), target, bounds=(lower, np.inf)).x
        floor = 1e-12 * float(np.max(np.abs(target))) / max(float(design[:, :n].abs().max()), 1e-300)
        p = p.copy()
        for phase, c in zip(self.phases, coef[:n]):
            p[phase.slices["scale"]] = np.log(max(c, floor))
        p[self.layout.slices["bkg"]] = coef[n:]
        return p


def line_weights(phase: Phase, p: torch.Tensor, metric: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """(R,) multiplicity·|F|² of each of the phase's families, times its preferred-orientation factor."""
    biso = p[phase.slices["biso"]][phase.biso_index]
    f2 = scattering.structure_factor_sq_torch(phase.hkl, d, phase.frac_coords(p), phase.ff, phase.occupancy, biso)
    weight = phase.mult * f2
    if phase.po_direction is not None:
        recip = torch.linalg.inv(metric)
        n = torch.tensor(phase.po_direction, dtype=torch.float64)
        along = torch.einsum("rmi,ij,j->rm", phase.images, recip, n)
        norm2 = torch.einsum("rmi,ij,rmj->rm", phase.images, recip, phase.images) * (n @ recip @ n)
        weight = weight * simulate.march_dollase_factor(along ** 2 / norm2, p[phase.slices["po"]][0])
    return weight


def contact_shortfalls(phase: Phase, p: torch.Tensor) -> torch.Tensor:
    """(pairs,) Å by which each pair of the phase's fully occupied atoms is closer than its
    contact limit (≥ 0)."""
    frac = phase.frac_coords(p)
    i, j = phase.contact_pairs
    delta = frac[j] - frac[i]
    delta = (delta - torch.round(delta))[:, None, :] + _IMAGES  # the nearest image among the neighbours'
    distance = torch.einsum("pni,ij,pnj->pn", delta, phase.metric(p), delta).min(dim=1).values.clamp_min(1e-12).sqrt()
    return (phase.contact_limits - distance).clamp_min(0.0)


def measurement_weights(pattern: Pattern) -> np.ndarray:
    """1/σ² where the file gives σ; otherwise Poisson-like 1/max(I, floor), the floor taken from the
    weakest measured (positive) intensities: in a low-count scan the many zero-count points would
    otherwise outweigh all the peaks."""
    if pattern.sigma is not None and np.all(pattern.sigma > 0):
        return 1.0 / pattern.sigma**2
    y = pattern.intensity
    positive = y[y > 0]
    weakest = float(np.percentile(positive, 5)) if positive.size else 0.0
    floor = max(weakest, 1e-6 * float(np.max(np.abs(y))), 1e-12)
    return 1.0 / np.maximum(y, floor)
