"""Agreement factors beside Rwp: Rexp, R-Bragg per phase, and what a large GoF means.

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


def r_expected(model: RietveldModel, n_refined: int) -> float:
    """Rexp (%) over the points refined, with the degrees of freedom GoF uses (``n_refined`` parameters)."""
    w = model.sqrt_w.numpy() ** 2
    y = model.y_obs.numpy()
    return float(100 * np.sqrt(max(y.size - n_refined, 1) / np.sum(w * y**2)))


def r_bragg(p: np.ndarray, model: RietveldModel) -> list[float]:
    """R-Bragg (%) of each phase at parameters ``p``, over the points refined."""
    p = torch.tensor(p)
    x = model.x
    wavelength = torch.tensor([model.wavelength.ka1])
    with torch.no_grad():
        params = model.profile_params(p)
        bragg, background = model.components(p, x)
        scales = [torch.exp(p[phase.slices["scale"]][0]) for phase in model.phases]
        net_calc = sum(s * b for s, b in zip(scales, bragg))
        share = torch.where(net_calc > 0, (model.y_obs - background) / net_calc.clamp_min(1e-300),
                            torch.zeros_like(net_calc))
    values = []
    for phase, scale in zip(model.phases, scales):
        with torch.no_grad():
            metric = phase.metric(p)
            d = torch.einsum("ri,ij,rj->r", phase.hkl, torch.linalg.inv(metric), phase.hkl).rsqrt()
            weight = line_weights(phase, p, metric, d)
        weight.requires_grad_(True)
        y = scale * simulate.peaks_torch(d[None], weight[None], x, wavelength, params)[0]
        observed, calculated = (weight.detach() * torch.autograd.grad(y @ r, weight, retain_graph=True)[0]
                                for r in (share, torch.ones_like(share)))
        total = float(observed.abs().sum())
        values.append(100 * float((observed - calculated).abs().sum()) / total if total > 0 else float("nan"))
    return values


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
