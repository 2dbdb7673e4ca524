"""Agreement factors beside Rwp: Rexp, R-Bragg per phase, the Rwp of a Le Bail fit, and what a
large GoF means.

Rexp = 100·√((N − P) / Σ w·y_obs²) is the Rwp that counting noise alone would give, so
GoF = Rwp / Rexp. R-Bragg = 100·Σ|I_obs − I_calc| / Σ I_obs over a phase's reflections, with
I_obs Rietveld's partition of the observed net intensity: each point's y_obs − background shared
among the reflections in proportion to their calculated contributions there. A reflection's
contribution is linear in its weight m|F|², so Σ_i y_ik·r_i = w_k·∂(Σ_i y_i r_i)/∂w_k: one
backward pass through the profile gives every reflection's share at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from model import simulate
from model.rietveld_model import RietveldModel, line_weights

if TYPE_CHECKING:
    from model.result import SolveResult

GOF_HIGH = 2.0  # a GoF above this at a low Rwp gets explained
RWP_LOW = 10.0  # %
LE_BAIL_CYCLES = 20  # least-squares cycles of the Le Bail fit: measured converged to 1e-6 % in Rwp by 10


def r_expected(model: RietveldModel, n_refined: int) -> float:
    """Rexp (%) over the points refined, with the degrees of freedom GoF uses (``n_refined`` parameters)."""
    w = model.sqrt_w.numpy() ** 2
    y = model.y_obs.numpy()
    return float(100 * np.sqrt(max(y.size - n_refined, 1) / np.sum(w * y**2)))


def r_bragg(p: np.ndarray, model: RietveldModel) -> list[float]:
    """R-Bragg (%) of each phase at parameters ``p``, over the points refined."""
    p = torch.tensor(p)
    with torch.no_grad():
        background = model.chebyshev(model.x) @ p[model.layout.slices["bkg"]]
    lines = _lines(p, model)
    net_calc = _net(p, model, lines)
    share = torch.where(net_calc > 0, (model.y_obs - background) / net_calc.clamp_min(1e-300),
                        torch.zeros_like(net_calc))
    values = []
    for observed, calculated in _line_sums(p, model, lines, (share, torch.ones_like(share))):
        total = float(observed.abs().sum())
        values.append(100 * float((observed - calculated).abs().sum()) / total if total > 0 else float("nan"))
    return values


def le_bail_rwp(p: np.ndarray, model: RietveldModel, cycles: int = LE_BAIL_CYCLES) -> float:
    """Rwp (%) of a Le Bail (Pawley) fit in the model's cells and profile at ``p``: every
    reflection's intensity free (≥ 0), fitted by weighted least squares together with the
    background. What no structure can beat in this cell, group and profile: a structure's Rwp well
    above it means the atoms, not the profile, miss intensities.

    The intensities by ISRA's multiplicative updates, I ← I·Σ_i P_i w_i (y_obs − bkg)_i / Σ_i P_i w_i
    y_net_i (P a reflection's profile): the weighted form of Le Bail's partition, which lowers χ²
    every cycle and keeps I ≥ 0 (Le Bail's unweighted partition is no least-squares fit: measured,
    its Rwp rose with the cycles above the true structure's)."""
    p = torch.tensor(p)
    with torch.no_grad():
        lines = [(d, torch.full_like(weight, float(weight.mean()))) for d, weight in _lines(p, model)]
        cheb = model.chebyshev(model.x)
    y, w = model.y_obs, model.sqrt_w**2
    net = _net(p, model, lines)
    for _ in range(cycles):
        background = _background(model, cheb, net)
        sums = _line_sums(p, model, lines, (w * (y - background).clamp_min(0), w * net))
        lines = [(d, weight * observed / calculated.clamp_min(1e-300))
                 for (d, weight), (observed, calculated) in zip(lines, sums)]
        net = _net(p, model, lines)
    background = _background(model, cheb, net)
    return float(100 * torch.sqrt(torch.sum(w * (y - net - background) ** 2) / torch.sum(w * y**2)))


def _lines(p: torch.Tensor, model: RietveldModel) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each phase's reflections at ``p``: d (Å) and the calculated multiplicity·|F|²."""
    lines = []
    with torch.no_grad():
        for phase in model.phases:
            metric = phase.metric(p)
            d = torch.einsum("ri,ij,rj->r", phase.hkl, torch.linalg.inv(metric), phase.hkl).rsqrt()
            lines.append((d, line_weights(phase, p, metric, d)))
    return lines


def _profiles(p: torch.Tensor, model: RietveldModel, lines: list[tuple[torch.Tensor, torch.Tensor]],
              grad: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each phase's (weights, scaled Bragg profile) for ``lines`` (d, weight); with ``grad`` the
    weights are leaves the profile can be differentiated by."""
    wavelength = torch.tensor([model.wavelength.ka1])
    profiles = []
    with torch.no_grad():
        params = model.profile_params(p)
    for phase, (d, weight) in zip(model.phases, lines):
        weight = weight.detach().clone().requires_grad_(grad)
        with torch.set_grad_enabled(grad):
            scale = torch.exp(p[phase.slices["scale"]][0])
            profiles.append((weight, scale * simulate.peaks_torch(d[None], weight[None], model.x, wavelength,
                                                                  params)[0]))
    return profiles


def _net(p: torch.Tensor, model: RietveldModel, lines: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """The phases' calculated pattern above background for ``lines``."""
    return sum(y for _, y in _profiles(p, model, lines, grad=False))


def _line_sums(p: torch.Tensor, model: RietveldModel, lines: list[tuple[torch.Tensor, torch.Tensor]],
               vectors: tuple[torch.Tensor, ...]) -> list[tuple[torch.Tensor, ...]]:
    """Per phase, for each vector v over the points, every reflection's Σ_i y_ik·v_i (y_ik its
    scaled profile): one backward pass a vector, as the profile is linear in the weights."""
    return [tuple(weight.detach() * torch.autograd.grad(y @ v, weight, retain_graph=True)[0] for v in vectors)
            for weight, y in _profiles(p, model, lines, grad=True)]


def _background(model: RietveldModel, cheb: torch.Tensor, net: torch.Tensor) -> torch.Tensor:
    """The Chebyshev background that best fits y_obs − ``net`` in the weighted least-squares sense."""
    coef = torch.linalg.lstsq(cheb * model.sqrt_w[:, None], ((model.y_obs - net) * model.sqrt_w)[:, None]).solution
    return cheb @ coef[:, 0]


def gof_note(rwp: float, rexp: float, gof: float) -> str:
    """One line on why GoF is large while Rwp is low (empty otherwise)."""
    if not (gof > GOF_HIGH and rwp < RWP_LOW):
        return ""
    return (f"GoF = Rwp/Rexp = {rwp:.2f} %/{rexp:.3g} %: the weights (1/σ²) say the noise is far below the "
            "misfit (very high counts, as at a synchrotron, or σ that understate the errors), so a misfit too "
            "small to see makes GoF large; judge the fit by Rwp and the difference curve")


def agreement_text(result: SolveResult) -> tuple[str, str]:
    """Rwp, Rp, Rexp, GoF and R-Bragg per phase on one line, and gof_note's line (may be empty)."""
    report = result.refinement
    text = f"Rwp {result.rwp:.2f} %   Rp {result.rp:.2f} %   Rexp {report.rexp:.3g} %   GoF {result.gof:.2f}"
    phases = [result, *result.phases]
    for phase, value in zip(phases, report.r_bragg):
        text += f"   R-Bragg{' ' + phase_formula(phase) if len(phases) > 1 else ''} {value:.2f} %"
    return text, gof_note(result.rwp, report.rexp, result.gof)


def phase_formula(result: SolveResult) -> str:
    """The reduced formula of a solution's atoms (occupancies counted)."""
    from pymatgen.core import Composition

    counts: dict[str, float] = {}
    for atom in result.atoms:
        counts[atom.element] = counts.get(atom.element, 0.0) + atom.occupancy
    return Composition(counts).reduced_formula
