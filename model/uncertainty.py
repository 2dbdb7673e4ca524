"""Estimated standard deviations (esds) of a refinement, from its least-squares covariance.

σ² = diag((JᵀWJ)⁻¹)·χ²_ν over the parameters the last least-squares step refined, J the weighted
Jacobian of that step at its solution (model.refine records it) and χ²_ν = χ² / (N − P). The internal
parameters are mapped to what a crystallographer reads: the cell a, b, c (Å), α, β, γ (°) and
V (Å³) through the Jacobian of the metric coefficients, the scale (refined as its logarithm), each
atom's fractional coordinates through its orbit's free directions, Biso per element (Å²), zero
shift and displacement (° 2θ), U V W (deg²), X Y (deg), the background terms and the March–Dollase
ratio. A parameter left on a bound of the refinement gets no esd (its covariance is undefined).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from model.agreement import phase_formula, r_bragg, r_expected
from model.instrument import Instrument
from model.result import Parameter, RefinementReport, SolveResult

if TYPE_CHECKING:
    from model.rietveld_layout import Phase
    from model.rietveld_model import RietveldModel

# the shared groups, their parameters' names and units, in the refinement's order
SHARED = {
    "zero": (("zero", "° 2θ"),),
    "displacement": (("displacement × cos θ", "° 2θ"),),
    "profile": (("U", "deg²"), ("V", "deg²"), ("W", "deg²"), ("X", "deg"), ("Y", "deg")),
    "asymmetry": (("asymmetry P1", ""), ("asymmetry P2", "")),
    "polarisation": (("polarisation", ""),),
    "ka2": (("Kα2/Kα1", ""),),
}
CELL_NAMES = (("a", "Å"), ("b", "Å"), ("c", "Å"), ("α", "°"), ("β", "°"), ("γ", "°"), ("V", "Å³"))
SINGULAR = 1e-12  # relative eigenvalue of the normalised normal matrix below which a direction is undetermined


def covariance(jacobian: np.ndarray, reduced_chi2: float, at_bound: np.ndarray | None = None) -> np.ndarray:
    """(P, P) covariance (JᵀJ)⁻¹·χ²_ν of least squares with weighted Jacobian J (N, P).

    Parameters on a bound, and those the data do not determine (a zero column), get NaN rows
    and columns. The normal matrix is inverted in its correlation form (unit diagonal), so
    parameters of very different sizes (Å, deg², counts) do not spoil the inverse.
    """
    jacobian = np.asarray(jacobian, dtype=float)
    size = jacobian.shape[1]
    norm = np.sqrt(np.sum(jacobian**2, axis=0))
    use = norm > 0
    if at_bound is not None:
        use &= ~np.asarray(at_bound, dtype=bool)
    scaled = jacobian[:, use] / norm[use]
    inverse = np.linalg.pinv(scaled.T @ scaled, rcond=SINGULAR, hermitian=True)
    result = np.full((size, size), np.nan)
    result[np.ix_(use, use)] = inverse / np.outer(norm[use], norm[use]) * reduced_chi2
    return result


def cell_parameters(metric: np.ndarray) -> np.ndarray:
    """a, b, c (Å), α, β, γ (°) and V (Å³) of a metric tensor G (Å²)."""
    a, b, c = np.sqrt(np.diag(metric))
    alpha = math.degrees(math.acos(np.clip(metric[1, 2] / (b * c), -1, 1)))
    beta = math.degrees(math.acos(np.clip(metric[0, 2] / (a * c), -1, 1)))
    gamma = math.degrees(math.acos(np.clip(metric[0, 1] / (a * b), -1, 1)))
    return np.array([a, b, c, alpha, beta, gamma, math.sqrt(max(np.linalg.det(metric), 0.0))])


def cell_jacobian(coefficients: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """(7, K) derivatives of cell_parameters with respect to the metric coefficients k
    (G = Σ k_i E_i), by central differences (the map is smooth; steps 1e-7 relative)."""
    columns = []
    for i in range(len(coefficients)):
        step = 1e-7 * max(abs(coefficients[i]), 1e-3)
        up, down = coefficients.copy(), coefficients.copy()
        up[i] += step
        down[i] -= step
        columns.append((cell_parameters(np.einsum("k,kij->ij", up, basis))
                        - cell_parameters(np.einsum("k,kij->ij", down, basis))) / (2 * step))
    return np.stack(columns, 1)


def propagate(jacobian: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Esds of y = f(x) for a linear(ised) map with Jacobian (M, K) and cov (K, K) of x;
    NaN where any parameter y depends on was not refined."""
    depends = jacobian != 0
    esd = np.sqrt(np.abs(np.einsum("mi,ij,mj->m", jacobian, np.nan_to_num(cov), jacobian)))
    undetermined = (depends & np.isnan(np.diag(cov))[None, :]).any(axis=1)
    return np.where(undetermined, np.nan, esd)


def report(p: np.ndarray, model: RietveldModel, jacobian: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
           n_refined: int, instrument: Instrument, kept: Sequence[str]) -> RefinementReport:
    """The refinement laid open at parameters ``p``; esds need the (free indices, weighted
    Jacobian, on-a-bound mask) of its last recorded least-squares step (none before the first:
    every esd is then None). ``n_refined`` parameters count against the degrees of freedom."""
    cov = np.full((p.size, p.size), np.nan)
    refined = np.zeros(p.size, dtype=bool)
    if jacobian is not None:
        free, weighted, at_bound = jacobian
        with torch.no_grad():
            residual = model.residuals(torch.tensor(p)).numpy()
        dof = max(residual.size - free.size, 1)
        cov[np.ix_(free, free)] = covariance(weighted, float(residual @ residual) / dof, at_bound)
        refined[free] = True
    parameters, xyz_esd = [], []
    several = len(model.phases) > 1
    for k, phase in enumerate(model.phases):
        prefix = f"{phase.structure.composition.reduced_formula} " if several else ""
        parameters += _phase_parameters(p, phase, k, prefix, cov, refined)
        xyz_esd.append(_coordinate_esds(phase, cov))
    parameters += _shared_parameters(p, model, cov, refined)
    groups = list(dict.fromkeys(q.group for q in parameters if q.refined))
    if any(refined[ph.slices["xyz"]].any() for ph in model.phases):
        groups.append("xyz")
    weights = np.zeros(len(model.pattern))
    weights[model.keep] = model.sqrt_w.numpy() ** 2
    orientations = [None if ph.po_direction is None else (ph.po_direction, float(p[ph.slices["po"]][0]))
                    for ph in model.phases]
    return RefinementReport(parameters, xyz_esd, r_expected(model, n_refined), r_bragg(p, model), groups, weights,
                            instrument, list(kept), orientations)


def _parameter(name, group, value, esd, unit, phase, refined) -> Parameter:
    esd = None if esd is None or not np.isfinite(esd) else float(esd)
    return Parameter(name, group, float(value), esd, unit, phase, bool(refined))


def _shared_parameters(p: np.ndarray, model: RietveldModel, cov: np.ndarray, refined: np.ndarray) -> list[Parameter]:
    esd = np.sqrt(np.diag(cov))
    rows = []
    slices = model.layout.slices
    background = np.arange(p.size)[slices["bkg"]]
    rows += [_parameter(f"background B{n}", "bkg", p[i], esd[i], "", None, refined[i])
             for n, i in enumerate(background)]
    for group, names in SHARED.items():
        if group == "ka2" and not model.doublet:
            continue
        for (name, unit), i in zip(names, np.arange(p.size)[slices[group]]):
            rows.append(_parameter(name, group, p[i], esd[i], unit, None, refined[i]))
    return rows


def _phase_parameters(p: np.ndarray, phase: Phase, k: int, prefix: str, cov: np.ndarray,
                      refined: np.ndarray) -> list[Parameter]:
    index = np.arange(p.size)
    scale = index[phase.slices["scale"]][0]
    rows = [_parameter(f"{prefix}scale", "scale", math.exp(p[scale]), math.exp(p[scale]) * math.sqrt(cov[scale, scale]),
                       "", k, refined[scale])]
    cell = index[phase.slices["cell"]]
    basis = phase.metric_basis.numpy()
    values = cell_parameters(np.einsum("k,kij->ij", p[cell], basis))
    jacobian = cell_jacobian(p[cell], basis)
    esds = propagate(jacobian, cov[np.ix_(cell, cell)])
    shown: list[np.ndarray] = []
    for (name, unit), value, esd, row in zip(CELL_NAMES, values, esds, jacobian):
        # fixed by the symmetry (a right angle) or equal to one shown (b = a): not a parameter
        if not np.any(np.abs(row) > 1e-9) or any(np.allclose(row, seen, atol=1e-9) for seen in shown):
            continue
        if name != "V":
            shown.append(row)
        rows.append(_parameter(f"{prefix}{name}", "cell", value, esd, unit, k, refined[cell].any()))
    for element, i in zip(phase.elements, index[phase.slices["biso"]]):
        rows.append(_parameter(f"{prefix}{element} Biso", "biso", p[i], math.sqrt(cov[i, i]), "Å²", k, refined[i]))
    if phase.po_direction is not None:
        i = index[phase.slices["po"]][0]
        h, kk, l = phase.po_direction
        rows.append(_parameter(f"{prefix}March–Dollase r [{h} {kk} {l}]*", "po", p[i], math.sqrt(cov[i, i]), "", k,
                               refined[i]))
    return rows


def _coordinate_esds(phase: Phase, cov: np.ndarray) -> np.ndarray:
    """(atoms, 3) esds of each atom's fractional coordinates, in the phase's atom order."""
    index = np.arange(cov.shape[0])[phase.slices["xyz"]]
    rows, offset = [], 0
    for orbit in phase.orbits:
        free = index[offset:offset + orbit.basis.shape[1]]
        offset += orbit.basis.shape[1]
        for rotation in orbit.rotations:
            jacobian = rotation @ orbit.basis
            rows.append(propagate(jacobian, cov[np.ix_(free, free)]) if free.size else np.zeros(3))
    return np.array(rows).reshape(-1, 3)


def coordinate_rows(result: SolveResult) -> list[Parameter]:
    """Each phase's coordinates free in its space group, one row per axis of each Wyckoff
    representative (``SolveResult.sites``), valued as shown in the window and the CIF."""
    report_ = result.refinement
    rows = []
    phases = [result, *result.phases]
    for k, phase in enumerate(phases):
        prefix = f"{phase_formula(phase)} " if len(phases) > 1 else ""
        esds = report_.xyz_esd[k] if report_ is not None and k < len(report_.xyz_esd) else None
        for site in phase.sites:
            row = esds[phase.atoms.index(site)] if esds is not None else np.full(3, np.nan)
            for axis, (name, value, esd) in enumerate(zip("xyz", site.xyz, row)):
                if esd == 0:  # fixed by the site symmetry
                    continue
                refined = bool(np.isfinite(esd))
                rows.append(_parameter(f"{prefix}{site.element} {site.wyckoff} {name}", "xyz", value,
                                       esd if refined else None, "", k, refined))
    return rows


def format_esd(value: float, esd: float | None, decimals: int = 5) -> str:
    """A value with its esd in the crystallographer's notation, 5.4312(3): the esd to two
    digits when its first is 1, otherwise one (IUCr); without an esd, ``decimals`` decimals."""
    if esd is None or not np.isfinite(esd) or esd <= 0:
        return f"{value:.{decimals}f}"
    places = -math.floor(math.log10(esd))
    if int(esd * 10**places) == 1:  # leading digit 1: two digits
        places += 1
    digits = round(esd * 10**places)
    if digits >= 20:  # rounding carried into the next digit: 0.000196 → (2) one place up
        places -= 1
        digits = round(esd * 10**places)
    value = round(value, places) + 0.0  # + 0.0: no "-0.000(4)"
    if places <= 0:
        return f"{value:.0f}({digits * 10 ** -places:.0f})"
    return f"{value:.{places}f}({digits})"
