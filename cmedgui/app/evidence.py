"""The verdict with the maps' evidence, as the results panel and the report word it: solved or not
(model.solve's verdict), the difference map's largest peak and hole, and atoms whose Biso sits at
a bound of the refinement (a Biso of 0.00 Å² hides a wrong scatterer or a wrong site, model.verdict.at_bounds), and the
solve's evidence (model.verdict.Evidence): Rwp and GoF, the Le Bail ratio, rivals within the noise."""

from __future__ import annotations

import math

from model.result import SolveResult


def verdict(result: SolveResult) -> str:
    """"Solved" or "NOT solved", with the solve's words for why."""
    words = "Solved" if result.solved else "NOT solved"
    return f"{words}: {result.message}" if result.message else words


def difference_extrema(result: SolveResult) -> tuple[list, float | None]:
    """The difference map's largest peak and deepest hole (objects with xyz, height, nearest_atom,
    distance), from the model's peak list or else from the map's grid, and the map's σ (or None)."""
    from model.fourier import (  # torch: load on first use, not with the window
        find_extrema,
        map_sigma,
    )

    difference = result.maps.get("difference")
    sigma = map_sigma(difference) if difference is not None else None
    peaks = list(result.map_peaks)
    if not peaks and difference is not None:
        peaks = find_extrema(difference, 2)
    above = [p for p in peaks if p.height > 0]
    below = [p for p in peaks if p.height < 0]
    chosen = ([max(above, key=lambda p: p.height)] if above else []) + (
        [min(below, key=lambda p: p.height)] if below else [])
    return chosen, sigma


def peak_text(peak, sigma: float | None) -> str:
    x, y, z = peak.xyz
    in_sigma = f" ({_significance(peak, sigma):+.1f}σ)" if sigma else ""
    near = f", {peak.distance_A:.2f} Å from {peak.nearest_atom}" if peak.nearest_atom else ""
    return f"{peak.height:+.2f} e/Å³{in_sigma} at ({x:.3f}, {y:.3f}, {z:.3f}){near}"


def evidence_rows(result: SolveResult) -> dict[str, str]:
    """The rows the panel and the report show under the verdict."""
    # pymatgen's analysis modules: load on first use, not with the window
    from model.verdict import at_bounds

    rows = {}
    evidence = result.verdict
    if evidence is not None:
        rows["Evidence"] = evidence.text()
    extrema, sigma = difference_extrema(result)
    for peak in extrema:
        rows["Difference peak" if peak.height > 0 else "Difference hole"] = peak_text(peak, sigma)
    bounds = at_bounds(result)
    if bounds:
        rows["At bounds"] = "; ".join(bounds)
    return rows


def cautions(result: SolveResult) -> list[str]:
    """Short words that qualify a "Solved": atoms on bounds, a difference feature above 3σ."""
    # pymatgen's analysis modules: load on first use, not with the window
    from model.verdict import at_bounds

    words = []
    if at_bounds(result):
        words.append("Biso on a bound")
    extrema, sigma = difference_extrema(result)
    if sigma and any(abs(_significance(p, sigma)) > 3 for p in extrema):
        words.append("difference map feature above 3σ")
    return words


def _significance(peak, map_rms: float) -> float:
    """The feature in its own noise σ where the model knows it (model.fourier.MapPeak.sigma: the
    counting noise carried through F_obs), else in the map's rms: a powder line's error is shared
    by every hkl in it, so the rms alone calls a correct model's map noisy."""
    return peak.significance if math.isfinite(peak.significance) else peak.height / map_rms
